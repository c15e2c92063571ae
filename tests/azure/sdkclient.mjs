#!/usr/bin/env node
// A small command line over the official Azure SDK (@azure/storage-blob,
// pinned in package-lock.json): the independent client of the Azure tests.
//
//   node sdkclient.mjs COMMAND ARGS...   (commands: see USAGE below)
//
// Connection: AZURE_ENDPOINT (path style, e.g.
// http://127.0.0.1:PORT/devstoreaccount1), AZURE_ACCOUNT, AZURE_ACCOUNT_KEY,
// as written to azurite.env by run-azurite.sh.  Prints one JSON document on
// stdout; on failure prints {"statusCode", "errorCode", "message"} on stderr
// and exits 1 (2 for a usage error).
//
// The SDK's retries are off by default (--max-tries 1) so that a test sees
// every error, injected faults included; --max-tries N turns them on with
// short delays.  --api-version V (or AZURE_SDK_API_VERSION) sends
// x-ms-version V instead of the SDK's own (2026-10-06 in 12.34.0, newer
// than any Azurite 3.37.0 accepts without --skipApiVersionCheck).

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

// The fixture is loopback only: never let an SDK proxy setting intervene.
for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
                    "ALL_PROXY", "all_proxy"]) {
  delete process.env[name];
}

// The CommonJS build throughout: the SAS internals below must see the same
// StorageSharedKeyCredential class as the public API.
const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const sdk = require("@azure/storage-blob");
let sasInternals = null;
try {
  // Not exported by the package: only used to show the string to sign.
  sasInternals = require(join(HERE, "node_modules/@azure/storage-blob/dist/" +
                              "commonjs/sas/BlobSASSignatureValues.js"));
} catch {
  sasInternals = null;
}

const USAGE = `usage: sdkclient.mjs COMMAND ...
  put CONTAINER BLOB FILE [--content-type T] [--metadata k=v ...]
      [--content-disposition D] [--cache-control C] [--content-encoding E]
      [--content-language L] [--block-size N]
  get CONTAINER BLOB OUTFILE [--offset N --count N]
  props CONTAINER BLOB
  list CONTAINER [--prefix P]
  delete CONTAINER BLOB
  sas CONTAINER BLOB --permissions r --expiry ISO [--start ISO]
      [--protocol https,http] [--version V] [--identifier ID] [--ip RANGE]
      [--content-disposition D] [--content-type T] [--cache-control C]
      [--content-encoding E] [--content-language L]
  get-url URL OUTFILE
  put-url URL FILE [--content-type T]
  create-container NAME...
  set-access-policy CONTAINER ID [--permissions r --start ISO --expiry ISO]
common: --max-tries N (default 1: no retries), --api-version V`;

const OPTIONS = {
  "content-type": { type: "string" },
  "content-disposition": { type: "string" },
  "cache-control": { type: "string" },
  "content-encoding": { type: "string" },
  "content-language": { type: "string" },
  metadata: { type: "string", multiple: true },
  "block-size": { type: "string" },
  offset: { type: "string" },
  count: { type: "string" },
  prefix: { type: "string" },
  permissions: { type: "string" },
  start: { type: "string" },
  expiry: { type: "string" },
  protocol: { type: "string" },
  version: { type: "string" },
  identifier: { type: "string" },
  ip: { type: "string" },
  "max-tries": { type: "string" },
  "api-version": { type: "string" },
};

class UsageError extends Error {}

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new UsageError(`${name} is not set (source the fixture's azurite.env)`);
  }
  return value;
}

function integer(text, name) {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} must be an integer`);
  return Number(text);
}

function date(text, name) {
  if (text === undefined) return undefined;
  const value = new Date(text);
  if (Number.isNaN(value.getTime())) {
    throw new UsageError(`--${name} must be an ISO 8601 time`);
  }
  return value;
}

function pipelineOptions(opts) {
  const maxTries = integer(opts["max-tries"], "max-tries") ?? 1;
  const options = {
    retryOptions: { maxTries, retryDelayInMs: 100, maxRetryDelayInMs: 1000 },
  };
  const apiVersion = opts["api-version"] ?? process.env.AZURE_SDK_API_VERSION;
  if (apiVersion) {
    // A per-call policy runs before the Shared Key policy ("Sign" phase),
    // so the replaced header is the one signed.
    options.additionalPolicies = [{
      position: "perCall",
      policy: {
        name: "sdkclientApiVersion",
        sendRequest(request, next) {
          request.headers.set("x-ms-version", apiVersion);
          return next(request);
        },
      },
    }];
  }
  return options;
}

function credential() {
  return new sdk.StorageSharedKeyCredential(env("AZURE_ACCOUNT"),
                                            env("AZURE_ACCOUNT_KEY"));
}

// A path-style endpoint (http://127.0.0.1:PORT/devstoreaccount1): the SDK
// signs "/account/account/container/blob".  Each client is made from the
// connection string, never derived from another (getContainerClient...):
// derived clients share a pipeline, and would add the --api-version policy
// to it a second time.
function connectionString() {
  return `DefaultEndpointsProtocol=http;AccountName=${env("AZURE_ACCOUNT")};` +
    `AccountKey=${env("AZURE_ACCOUNT_KEY")};` +
    `BlobEndpoint=${env("AZURE_ENDPOINT")};`;
}

function containerClient(opts, container) {
  return new sdk.ContainerClient(connectionString(), container,
                                 pipelineOptions(opts));
}

function blobClient(opts, container, blob, Kind = sdk.BlobClient) {
  return new Kind(connectionString(), container, blob, pipelineOptions(opts));
}

function b64(bytes) {
  return bytes ? Buffer.from(bytes).toString("base64") : null;
}

function iso(value) {
  return value instanceof Date ? value.toISOString() : value ?? null;
}

function httpHeaders(opts) {
  const headers = {
    blobContentType: opts["content-type"],
    blobContentDisposition: opts["content-disposition"],
    blobCacheControl: opts["cache-control"],
    blobContentEncoding: opts["content-encoding"],
    blobContentLanguage: opts["content-language"],
  };
  for (const key of Object.keys(headers)) {
    if (headers[key] === undefined) delete headers[key];
  }
  return headers;
}

function metadata(opts) {
  const result = {};
  for (const pair of opts.metadata ?? []) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new UsageError(`--metadata wants k=v, got ${pair}`);
    result[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return result;
}

function need(args, count, what) {
  if (args.length !== count) throw new UsageError(`${what}\n\n${USAGE}`);
  return args;
}

const COMMANDS = {
  async put(args, opts) {
    const [container, blob, file] = need(args, 3, "put CONTAINER BLOB FILE");
    const client = blobClient(opts, container, blob, sdk.BlockBlobClient);
    const blockSize = integer(opts["block-size"], "block-size");
    const options = { blobHTTPHeaders: httpHeaders(opts),
                      metadata: metadata(opts) };
    if (blockSize !== undefined) {
      // Files larger than this go up as PutBlock + PutBlockList.
      options.blockSize = blockSize;
      options.maxSingleShotSize = blockSize;
    }
    const response = await client.uploadFile(file, options);
    return { etag: response.etag, contentMD5: b64(response.contentMD5),
             lastModified: iso(response.lastModified),
             versionId: response.versionId ?? null,
             requestId: response.requestId ?? null };
  },

  async get(args, opts) {
    const [container, blob, out] = need(args, 3, "get CONTAINER BLOB OUTFILE");
    const client = blobClient(opts, container, blob);
    const offset = integer(opts.offset, "offset") ?? 0;
    const count = integer(opts.count, "count");
    const response = await client.downloadToFile(out, offset, count);
    return downloadFields(response);
  },

  async props(args, opts) {
    const [container, blob] = need(args, 2, "props CONTAINER BLOB");
    const r = await blobClient(opts, container, blob).getProperties();
    const result = {
      contentLength: r.contentLength, contentType: r.contentType ?? null,
      contentMD5: b64(r.contentMD5), etag: r.etag,
      lastModified: iso(r.lastModified), metadata: r.metadata ?? {},
      contentDisposition: r.contentDisposition ?? null,
      cacheControl: r.cacheControl ?? null,
      contentEncoding: r.contentEncoding ?? null,
      contentLanguage: r.contentLanguage ?? null,
      blobType: r.blobType ?? null, accessTier: r.accessTier ?? null,
    };
    if (r.versionId) result.versionId = r.versionId;
    return result;
  },

  async list(args, opts) {
    const [container] = need(args, 1, "list CONTAINER");
    const client = containerClient(opts, container);
    const blobs = [];
    for await (const item of client.listBlobsFlat({ prefix: opts.prefix })) {
      blobs.push({ name: item.name, size: item.properties.contentLength,
                   etag: item.properties.etag,
                   contentType: item.properties.contentType ?? null });
    }
    return { blobs };
  },

  async delete(args, opts) {
    const [container, blob] = need(args, 2, "delete CONTAINER BLOB");
    const r = await blobClient(opts, container, blob).delete();
    return { deleted: true, requestId: r.requestId ?? null };
  },

  async sas(args, opts) {
    const [container, blob] = need(args, 2, "sas CONTAINER BLOB");
    if (!opts.identifier && (!opts.permissions || !opts.expiry)) {
      throw new UsageError("sas needs --permissions and --expiry " +
                           "(or --identifier)");
    }
    const values = {
      containerName: container,
      blobName: blob,
      permissions: opts.permissions === undefined ? undefined
        : sdk.BlobSASPermissions.parse(opts.permissions),
      startsOn: date(opts.start, "start"),
      expiresOn: date(opts.expiry, "expiry"),
      protocol: opts.protocol,
      version: opts.version,
      identifier: opts.identifier,
      contentDisposition: opts["content-disposition"],
      contentType: opts["content-type"],
      cacheControl: opts["cache-control"],
      contentEncoding: opts["content-encoding"],
      contentLanguage: opts["content-language"],
    };
    if (opts.ip) {
      const [start, end] = opts.ip.split("-");
      values.ipRange = end ? { start, end } : { start };
    }
    for (const key of Object.keys(values)) {
      if (values[key] === undefined) delete values[key];
    }
    const cred = credential();
    let query, stringToSign = null;
    if (sasInternals) {
      const r = sasInternals.generateBlobSASQueryParametersInternal(values, cred);
      query = r.sasQueryParameters;
      stringToSign = r.stringToSign;
    } else {
      query = sdk.generateBlobSASQueryParameters(values, cred);
    }
    const blobUrl = blobClient(opts, container, blob).url;
    const text = query.toString();
    return { query: text, signature: query.signature,
             version: query.version, stringToSign,
             url: `${blobUrl}?${text}` };
  },

  async "get-url"(args, opts) {
    const [url, out] = need(args, 2, "get-url URL OUTFILE");
    const client = new sdk.BlobClient(url, new sdk.AnonymousCredential(),
                                      pipelineOptions(opts));
    return downloadFields(await client.downloadToFile(out));
  },

  async "put-url"(args, opts) {
    const [url, file] = need(args, 2, "put-url URL FILE");
    const client = new sdk.BlockBlobClient(url, new sdk.AnonymousCredential(),
                                           pipelineOptions(opts));
    const r = await client.uploadFile(file,
                                      { blobHTTPHeaders: httpHeaders(opts) });
    return { etag: r.etag, contentMD5: b64(r.contentMD5),
             lastModified: iso(r.lastModified) };
  },

  async "create-container"(args, opts) {
    if (args.length === 0) throw new UsageError("create-container NAME...");
    const created = {};
    for (const name of args) {
      const r = await containerClient(opts, name).createIfNotExists();
      created[name] = r.succeeded;
    }
    return { created };
  },

  async "set-access-policy"(args, opts) {
    const [container, id] = need(args, 2, "set-access-policy CONTAINER ID");
    const accessPolicy = {};
    if (opts.permissions) accessPolicy.permissions = opts.permissions;
    if (opts.start) accessPolicy.startsOn = date(opts.start, "start");
    if (opts.expiry) accessPolicy.expiresOn = date(opts.expiry, "expiry");
    await containerClient(opts, container)
      .setAccessPolicy(undefined, [{ id, accessPolicy }]);
    return { ok: true };
  },
};

function downloadFields(r) {
  return {
    etag: r.etag, contentLength: r.contentLength,
    contentType: r.contentType ?? null, contentRange: r.contentRange ?? null,
    contentMD5: b64(r.contentMD5), metadata: r.metadata ?? {},
    contentDisposition: r.contentDisposition ?? null,
    cacheControl: r.cacheControl ?? null,
    contentEncoding: r.contentEncoding ?? null,
    contentLanguage: r.contentLanguage ?? null,
  };
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({ args: process.argv.slice(2), options: OPTIONS,
                         allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${err.message}\n\n${USAGE}`);
  }
  const [command, ...args] = parsed.positionals;
  const run = COMMANDS[command];
  if (!run) throw new UsageError(USAGE);
  return run(args, parsed.values);
}

main().then(
  (result) => {
    process.stdout.write(JSON.stringify(result, null, 1) + "\n");
  },
  (err) => {
    if (err instanceof UsageError) {
      process.stderr.write(`sdkclient.mjs: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    const errorCode = err.details?.errorCode ?? err.code ?? null;
    process.stderr.write(JSON.stringify({
      statusCode: err.statusCode ?? null, errorCode,
      message: String(err.message ?? err).split("\n")[0],
    }) + "\n");
    process.exitCode = 1;
  });
