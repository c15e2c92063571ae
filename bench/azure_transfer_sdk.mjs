// Peer for bench/azure_transfer.sh: the official Azure SDK for JavaScript,
// @azure/storage-blob (the version pinned by tests/azure/package-lock.json;
// `npm ci` in tests/azure installs it, with Azurite).
//
//   node azure_transfer_sdk.mjs small ENDPOINT ACCOUNT KEY CONTAINER PREFIX COUNT FILE
//       COUNT uploads of FILE's bytes as PREFIX<i>.bin (i = 1..COUNT), each
//       through its own BlockBlobClient from one ContainerClient
//       (getBlockBlobClient(name).upload(body, length): one Put Blob),
//       awaited one after another; then COUNT downloads the same way
//       (download(): one Get Blob, the body read into memory). Prints
//       "put_seconds", "get_seconds".
//   node azure_transfer_sdk.mjs large ENDPOINT ACCOUNT KEY CONTAINER PREFIX FILE BLOCK_SIZE CONCURRENCY
//       FILE's bytes (read into memory before the clock starts) as
//       PREFIX-blocks.bin with uploadData (blockSize = maxSingleShotSize =
//       BLOCK_SIZE, concurrency = CONCURRENCY: Put Block in parallel, then
//       Put Block List, as the backend does for an object larger than its
//       block_size), read back with downloadToBuffer (the same block size
//       and concurrency: Get Blob Properties, then ranged Get Blob in
//       parallel); then as PREFIX-single.bin with one upload() (one Put
//       Blob) read back with one download() (one Get Blob). Prints
//       "blocks_put_seconds", "blocks_get_seconds", "single_put_seconds",
//       "single_get_seconds".
//
// ENDPOINT is path style (http://127.0.0.1:PORT/ACCOUNT, as the fixture's
// azurite.env has it); KEY is the account key (Shared Key). The client is
// created before the clock starts, keep-alive on (the SDK's default, set
// explicitly), the SDK's default retry policy (no fault is injected), no
// proxy. Its first connection is timed. Every body read back is compared
// with what was written.
//
// BENCH_STATS_URL (the fixture's /__fixture/stats): read after each timed
// step but the last, outside the clock, each time on a connection of its
// own, and printed as "stats_<step> <JSON>" (small: put; large: blocks_put,
// blocks_get, single_put), so that the requests of each step can be told
// apart.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { get as httpGet } from "node:http";
import { createRequire } from "node:module";

// The fixture is loopback only: no proxy setting may intervene.
for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"]) {
  delete process.env[name];
}

// The SDK installed for the Azure fixture (tests/azure/node_modules).
const require = createRequire(new URL("../tests/azure/package.json", import.meta.url));
const { ContainerClient, StorageSharedKeyCredential } = require("@azure/storage-blob");

function containerClient(endpoint, account, key, container) {
  return new ContainerClient(`${endpoint.replace(/\/+$/, "")}/${container}`,
                             new StorageSharedKeyCredential(account, key),
                             { keepAliveOptions: { enable: true } });
}

async function readAll(stream, size) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks, size);
}

// The fixture's counters, one line, when BENCH_STATS_URL is set.
function stats(step) {
  const url = process.env.BENCH_STATS_URL;
  if (!url) return Promise.resolve();
  return new Promise((resolve, reject) => {
    httpGet(url, { agent: false }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => {
        process.stdout.write(`stats_${step} ${JSON.stringify(JSON.parse(Buffer.concat(chunks).toString()))}\n`);
        resolve();
      });
      response.on("error", reject);
    }).on("error", reject);
  });
}

const md5 = (data) => createHash("md5").update(data).digest("hex");

async function small(endpoint, account, key, container, prefix, count, file) {
  const body = readFileSync(file);
  const client = containerClient(endpoint, account, key, container);
  const names = [];
  for (let i = 1; i <= Number.parseInt(count, 10); i++) names.push(`${prefix}${i}.bin`);

  const t0 = process.hrtime.bigint();
  for (const name of names) await client.getBlockBlobClient(name).upload(body, body.length);
  const t1 = process.hrtime.bigint();
  await stats("put");
  const t1b = process.hrtime.bigint();
  let wrong = 0;
  for (const name of names) {
    const response = await client.getBlockBlobClient(name).download();
    if (!(await readAll(response.readableStreamBody)).equals(body)) wrong++;
  }
  const t2 = process.hrtime.bigint();
  if (wrong) throw new Error(`sdk: ${wrong} blobs read back differ`);
  process.stdout.write(`put_seconds ${(Number(t1 - t0) / 1e9).toFixed(6)}\n`);
  process.stdout.write(`get_seconds ${(Number(t2 - t1b) / 1e9).toFixed(6)}\n`);
}

async function large(endpoint, account, key, container, prefix, file, blockSizeText, concurrencyText) {
  const body = readFileSync(file);
  const digest = md5(body);
  const blockSize = Number.parseInt(blockSizeText, 10);
  const concurrency = Number.parseInt(concurrencyText, 10);
  const client = containerClient(endpoint, account, key, container);

  const blocks = client.getBlockBlobClient(`${prefix}-blocks.bin`);
  const t0 = process.hrtime.bigint();
  await blocks.uploadData(body, { blockSize, maxSingleShotSize: blockSize, concurrency });
  const t1 = process.hrtime.bigint();
  await stats("blocks_put");
  const t1b = process.hrtime.bigint();
  let data = await blocks.downloadToBuffer(0, undefined, { blockSize, concurrency });
  const t2 = process.hrtime.bigint();
  await stats("blocks_get");
  if (md5(data) !== digest) throw new Error("sdk: downloadToBuffer read back other bytes");
  data = null;

  const single = client.getBlockBlobClient(`${prefix}-single.bin`);
  const t3 = process.hrtime.bigint();
  await single.upload(body, body.length);
  const t4 = process.hrtime.bigint();
  await stats("single_put");
  const t4b = process.hrtime.bigint();
  const response = await single.download();
  data = await readAll(response.readableStreamBody, body.length);
  const t5 = process.hrtime.bigint();
  if (md5(data) !== digest) throw new Error("sdk: download read back other bytes");

  const seconds = (a, b) => (Number(b - a) / 1e9).toFixed(6);
  process.stdout.write(`blocks_put_seconds ${seconds(t0, t1)}\n`);
  process.stdout.write(`blocks_get_seconds ${seconds(t1b, t2)}\n`);
  process.stdout.write(`single_put_seconds ${seconds(t3, t4)}\n`);
  process.stdout.write(`single_get_seconds ${seconds(t4b, t5)}\n`);
}

async function main(argv) {
  if (argv.length === 8 && argv[0] === "small") {
    await small(...argv.slice(1));
  } else if (argv.length === 9 && argv[0] === "large") {
    await large(...argv.slice(1));
  } else {
    process.stderr.write(
      "usage: node azure_transfer_sdk.mjs small ENDPOINT ACCOUNT KEY CONTAINER PREFIX COUNT FILE\n" +
      "       node azure_transfer_sdk.mjs large ENDPOINT ACCOUNT KEY CONTAINER PREFIX FILE BLOCK_SIZE CONCURRENCY\n");
    return 2;
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
