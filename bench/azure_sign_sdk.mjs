// Peer for bench/azure_sign.sh: service SAS URLs for one blob each from the
// official Azure SDK for JavaScript, @azure/storage-blob (the version
// pinned by tests/azure/package-lock.json; `npm ci` in tests/azure).
//
//   node azure_sign_sdk.mjs MODE ENDPOINT ACCOUNT ACCOUNT_KEY CONTAINER COUNT EXPIRES [UNIX_TIME]
//
// MODE
//   query   generateBlobSASQueryParameters({containerName, blobName,
//           permissions: "r", protocol, expiresOn, version: "2021-08-06"},
//           StorageSharedKeyCredential), its toString() appended to the
//           blob's URL: the container client's URL, "/", the blob name
//           escaped as the SDK's getBlobClient does (encodeURIComponent of
//           each "/"-separated segment);
//   client  containerClient.getBlobClient(name).generateSasUrl({...the
//           same...}): the SDK's own way to a URL, a BlobClient per blob;
//   print-query, print-client  print the COUNT URLs, one a line, untimed.
// The same inputs as so_sign for an Azure backend: read permission, no
// start time, expiry = signing time + EXPIRES, protocol "https,http" for
// an http:// endpoint (else "https"), version 2021-08-06 (the extension's
// sv). One credential and one ContainerClient, created before the clock
// starts; key i (1..COUNT) is "photos/<i>/photo <i>.jpg", prepared before
// the clock starts; URLs made one after another (client: each awaited;
// query: synchronous, nothing awaited).
// Prints "rate", "seconds", "bytes" and "sample" (the URL of key 1) lines;
// UNIX_TIME pins the signing time (default: now, whole seconds).
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/azure/package.json", import.meta.url));
const { ContainerClient, StorageSharedKeyCredential, BlobSASPermissions, generateBlobSASQueryParameters } =
  require("@azure/storage-blob");

const VERSION = "2021-08-06";

// The SDK's EscapePath (utils.common.js, not exported), as getBlobClient uses it.
const escapePath = (name) => name.split("/").map(encodeURIComponent).join("/");

async function main(argv) {
  if (argv.length !== 7 && argv.length !== 8) {
    process.stderr.write("usage: node azure_sign_sdk.mjs query|client|print-query|print-client " +
                         "ENDPOINT ACCOUNT ACCOUNT_KEY CONTAINER COUNT EXPIRES [UNIX_TIME]\n");
    return 2;
  }
  const [mode, endpoint, account, accountKey, container] = argv;
  const count = Number.parseInt(argv[5], 10);
  const expires = Number.parseInt(argv[6], 10);
  const now = argv.length === 8 ? Number.parseInt(argv[7], 10) : Math.floor(Date.now() / 1000);
  const credential = new StorageSharedKeyCredential(account, accountKey);
  const client = new ContainerClient(`${endpoint.replace(/\/+$/, "")}/${container}`, credential);
  const values = {
    permissions: BlobSASPermissions.parse("r"),
    protocol: endpoint.startsWith("https://") ? "https" : "https,http",
    expiresOn: new Date((now + expires) * 1000),
    version: VERSION,
  };
  const keys = [];
  for (let i = 1; i <= count; i++) keys.push(`photos/${i}/photo ${i}.jpg`);

  let sign, awaited = false;
  if (mode.endsWith("query")) {
    const base = client.url;
    sign = (key) => `${base}/${escapePath(key)}?` +
      generateBlobSASQueryParameters({ ...values, containerName: container, blobName: key }, credential).toString();
  } else if (mode.endsWith("client")) {
    sign = (key) => client.getBlobClient(key).generateSasUrl(values);
    awaited = true;  // generateSasUrl returns a promise
  } else {
    process.stderr.write(`azure_sign_sdk.mjs: unknown mode ${mode}\n`);
    return 2;
  }

  if (mode.startsWith("print-")) {
    const lines = [];
    for (const key of keys) lines.push(await sign(key));
    process.stdout.write(lines.join("\n") + "\n");
    return 0;
  }
  const sample = await sign(keys[0]);  // warm-up: loads the code paths
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  if (awaited) {
    for (const key of keys) bytes += (await sign(key)).length;
  } else {
    for (const key of keys) bytes += sign(key).length;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

  process.stdout.write(`rate ${Math.round(count / seconds)}\n`);
  process.stdout.write(`seconds ${seconds.toFixed(6)}\n`);
  process.stdout.write(`bytes ${bytes}\n`);
  process.stdout.write(`sample ${sample}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
