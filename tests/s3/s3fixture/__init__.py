"""Helpers of s3proxy.py, the strict S3 front of the s3rver test fixture."""
