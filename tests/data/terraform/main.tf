# Every resource and data source ecrd serves to Terraform's AWS provider, in one configuration: applied, planned
# again with no changes, and destroyed by tests/e2e/test_terraform.py against a real ecrd server.

terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

variable "endpoint" { type = string }
variable "access_key" { type = string }
variable "secret_key" { type = string }
variable "image_repository" {
  type        = string
  description = "A repository holding the image tagged \"latest\", read by the aws_ecr_image data source."
}

provider "aws" {
  region     = "us-east-1"
  access_key = var.access_key
  secret_key = var.secret_key
  # No instance metadata service here; everything else (the account id included) comes from ecrd's STS.
  skip_metadata_api_check = true
  endpoints {
    ecr            = var.endpoint
    iam            = var.endpoint
    sts            = var.endpoint
    kms            = var.endpoint
    secretsmanager = var.endpoint
  }
}

data "aws_caller_identity" "current" {}
data "aws_ecr_authorization_token" "token" {}
data "aws_ecr_image" "latest" {
  repository_name = var.image_repository
  image_tag       = "latest"
}

# -- KMS ---------------------------------------------------------------------------------------------------

resource "aws_kms_key" "ecr" {
  description             = "images of the app"
  deletion_window_in_days = 7
  enable_key_rotation     = true
  rotation_period_in_days = 180
  tags                    = { team = "platform" }
}

resource "aws_kms_alias" "ecr" {
  name          = "alias/tf-app"
  target_key_id = aws_kms_key.ecr.key_id
}

# -- ECR ---------------------------------------------------------------------------------------------------

resource "aws_ecr_repository" "app" {
  name                 = "tf/app"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = true
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.ecr.arn
  }
  tags = { env = "test" }
}

resource "aws_ecr_repository" "plain" {
  name = "tf/plain"
  encryption_configuration {
    encryption_type = "AES256"
  }
}

resource "aws_ecr_repository_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "pull"
      Effect    = "Allow"
      Principal = { AWS = aws_iam_user.ci.arn }
      Action    = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    }]
  })
}

resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "expire untagged"
      selection    = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 14 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_ecr_registry_policy" "registry" {
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "replicate"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = ["ecr:ReplicateImage"]
      Resource  = "arn:aws:ecr:us-east-1:${data.aws_caller_identity.current.account_id}:repository/*"
    }]
  })
}

resource "aws_ecr_registry_scanning_configuration" "scanning" {
  scan_type = "BASIC"
  rule {
    scan_frequency = "SCAN_ON_PUSH"
    repository_filter {
      filter      = "tf/*"
      filter_type = "WILDCARD"
    }
  }
}

# The destination is a peer deployment the test registers with `ecrd replication-peer add` before applying.
resource "aws_ecr_replication_configuration" "edge" {
  replication_configuration {
    rule {
      destination {
        region      = "eu-west-1"
        registry_id = "111122223333"
      }
      repository_filter {
        filter      = "tf-replicated/"
        filter_type = "PREFIX_MATCH"
      }
    }
  }
}

resource "aws_ecr_repository_creation_template" "cache" {
  prefix               = "cache"
  description          = "repositories the pull-through cache creates"
  applied_for          = ["PULL_THROUGH_CACHE"]
  image_tag_mutability = "MUTABLE"
  resource_tags        = { origin = "cache" }
  encryption_configuration {
    encryption_type = "AES256"
  }
  lifecycle_policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep 20"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 20 }
      action       = { type = "expire" }
    }]
  })
}

# The upstream's credentials, where ECR keeps them: a Secrets Manager secret under ecr-pullthroughcache/.
resource "aws_secretsmanager_secret" "upstream" {
  name                    = "ecr-pullthroughcache/tf-upstream"
  description             = "credentials of the upstream registry"
  recovery_window_in_days = 0
  tags                    = { use = "cache" }
}

resource "aws_secretsmanager_secret_version" "upstream" {
  secret_id     = aws_secretsmanager_secret.upstream.id
  secret_string = jsonencode({ username = "puller", accessToken = "not-a-real-token" })
}

resource "aws_ecr_pull_through_cache_rule" "cache" {
  ecr_repository_prefix = "cache"
  upstream_registry_url = "registry-1.docker.io"
  credential_arn        = aws_secretsmanager_secret.upstream.arn
  depends_on            = [aws_secretsmanager_secret_version.upstream]
}

# -- IAM ---------------------------------------------------------------------------------------------------

resource "aws_iam_user" "ci" {
  name = "tf-ci"
  path = "/ci/"
  tags = { role = "ci" }
}

resource "aws_iam_access_key" "ci" {
  user = aws_iam_user.ci.name
}

resource "aws_iam_user" "operator" {
  name = "tf-operator"
}

resource "aws_iam_group" "developers" {
  name = "tf-developers"
  path = "/teams/"
}

resource "aws_iam_group" "operators" {
  name = "tf-operators"
}

resource "aws_iam_group_membership" "developers" {
  name  = "tf-developers-membership"
  group = aws_iam_group.developers.name
  users = [aws_iam_user.ci.name]
}

resource "aws_iam_user_group_membership" "operator" {
  user   = aws_iam_user.operator.name
  groups = [aws_iam_group.operators.name]
}

resource "aws_iam_policy" "pull" {
  name        = "tf-pull"
  description = "pull images"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["ecr:GetAuthorizationToken", "ecr:BatchGetImage"], Resource = "*" }]
  })
  tags = { kind = "pull" }
}

resource "aws_iam_user_policy_attachment" "ci" {
  user       = aws_iam_user.ci.name
  policy_arn = aws_iam_policy.pull.arn
}

resource "aws_iam_group_policy_attachment" "developers" {
  group      = aws_iam_group.developers.name
  policy_arn = aws_iam_policy.pull.arn
}

resource "aws_iam_group_policy" "operators" {
  name  = "describe-images"
  group = aws_iam_group.operators.name
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "ecr:DescribeImages", Resource = "*" }]
  })
}

resource "aws_iam_role" "deployer" {
  name = "tf-deployer"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { AWS = aws_iam_user.ci.arn }, Action = "sts:AssumeRole" }]
  })
  tags = { role = "deploy" }
}

resource "aws_iam_role_policy_attachment" "deployer" {
  role       = aws_iam_role.deployer.name
  policy_arn = aws_iam_policy.pull.arn
}

resource "aws_iam_role_policy" "deployer" {
  name = "describe"
  role = aws_iam_role.deployer.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "ecr:DescribeRepositories", Resource = "*" }]
  })
}

resource "aws_iam_user_policy" "ci" {
  name = "describe"
  user = aws_iam_user.ci.name
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "ecr:DescribeRepositories", Resource = "*" }]
  })
}

# -- what the test reads back --------------------------------------------------------------------------------

output "account_id" { value = data.aws_caller_identity.current.account_id }
output "caller_arn" { value = data.aws_caller_identity.current.arn }
output "proxy_endpoint" { value = data.aws_ecr_authorization_token.token.proxy_endpoint }
output "image_digest" { value = data.aws_ecr_image.latest.image_digest }
output "repository_url" { value = aws_ecr_repository.app.repository_url }
output "cache_registry_id" { value = aws_ecr_pull_through_cache_rule.cache.registry_id }
output "ci_access_key_id" { value = aws_iam_access_key.ci.id }
output "ci_secret" {
  value     = aws_iam_access_key.ci.secret
  sensitive = true
}
