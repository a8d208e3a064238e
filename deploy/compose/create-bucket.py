"""Creates the bucket ecrd stores blobs in, once, when the object store answers (ecrd creates no buckets).

Usage: python3 create-bucket.py BUCKET, with S3_ENDPOINT_URL, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY set.
Runs in the ecrd image, whose Python carries botocore.
"""

import os
import sys
import time

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

ATTEMPTS = 60
PAUSE_SECONDS = 2.0
ALREADY_THERE = ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")


def main(bucket: str) -> int:
    s3 = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        region_name=os.environ.get("S3_REGION", "us-east-1"),
        aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
    )
    for _ in range(ATTEMPTS):
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ALREADY_THERE:
                return 0
            print(f"create-bucket: {exc}", file=sys.stderr)
        except BotoCoreError as exc:  # not answering yet
            print(f"create-bucket: {exc}", file=sys.stderr)
        else:
            print(f"created bucket {bucket}")
            return 0
        time.sleep(PAUSE_SECONDS)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
