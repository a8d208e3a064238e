"""`ecrd aws-model SERVICE`: print the service model ecrd serves (botocore's, with ecrd's own operations), for
`aws configure add-model` so that the AWS CLI (and boto3 on that machine) can call ecrd's own operations."""

from __future__ import annotations

import argparse
import json

from ecrd.aws.extensions import EXTENSIONS


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("aws-model", help="print a service model with ecrd's own operations (JSON)")
    parser.add_argument("service", choices=sorted(EXTENSIONS))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ecrd.aws.models import model_data

    print(json.dumps(model_data(args.service)))
    return 0
