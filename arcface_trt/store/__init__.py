"""The shared engine store on S3 (and S3-compatible servers): :mod:`.s3` (settings, client, one-line
errors) and :mod:`.engines` (push, fetch, list). boto3 is imported on first use."""
