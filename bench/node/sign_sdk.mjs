// Peer for bench/s3_sign.sh: the AWS SDK for JavaScript v3,
// @aws-sdk/s3-request-presigner's getSignedUrl over @aws-sdk/client-s3's
// GetObjectCommand (versions pinned by package-lock.json; install with
// `npm ci` in this directory).
//
//   node sign_sdk.mjs ENDPOINT BUCKET ACCESS_KEY SECRET_KEY REGION COUNT EXPIRES
//
// One client (created before the clock starts) with a fixed endpoint,
// path-style addressing and static credentials; checksums only "when
// required", as the S3 fixture asks of SDKs. Key i (1..COUNT) is
// "photos/<i>/photo <i>.jpg", as in the other peers; keys are prepared
// before the clock starts. URLs are signed one after another (each
// awaited), as a loop in an application does. Prints "rate", "seconds",
// "bytes" and "sample" lines.
import { S3Client, GetObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

async function main(argv) {
  if (argv.length !== 7) {
    process.stderr.write(
      "usage: node sign_sdk.mjs ENDPOINT BUCKET ACCESS_KEY SECRET_KEY REGION COUNT EXPIRES\n");
    return 2;
  }
  const [endpoint, bucket, accessKeyId, secretAccessKey, region] = argv;
  const count = Number.parseInt(argv[5], 10);
  const expiresIn = Number.parseInt(argv[6], 10);
  const client = new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const keys = [];
  for (let i = 1; i <= count; i++) keys.push(`photos/${i}/photo ${i}.jpg`);

  const sign = (key) => getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn });
  const sample = await sign(keys[0]);  // warm-up: resolves the endpoint, loads the signer

  const t0 = process.hrtime.bigint();
  let bytes = 0;
  for (const key of keys) bytes += (await sign(key)).length;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

  process.stdout.write(`rate ${Math.round(count / seconds)}\n`);
  process.stdout.write(`seconds ${seconds.toFixed(6)}\n`);
  process.stdout.write(`bytes ${bytes}\n`);
  process.stdout.write(`sample ${sample}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
