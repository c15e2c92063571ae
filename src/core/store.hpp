// What every storage backend offers the transactional layer.
//
// Two ways to write: create() makes the object visible at once and fails
// if the key exists (the undo is remove()); stage() writes where readers
// cannot see it, and promote() makes it replace the object at the key,
// keeping what it replaced until drop_backup() or restore().
#pragma once

#include <cstdint>
#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/object_attributes.hpp"
#include "core/object_meta.hpp"

namespace so {

struct PutRequest {
    std::string key;
    const char *data = nullptr;
    size_t size = 0;
    std::string content_type;
    std::string metadata_json = "{}";
    ObjectAttributes attributes;  // the call's; a store adds its backend's defaults
};

// The bytes of an object, read front to back in pieces, so an object can
// move between stores without being held whole in memory.
class ByteSource {
public:
    virtual ~ByteSource() = default;
    virtual uint64_t size() const = 0;
    // The next piece, at most max bytes, valid until the next call; empty
    // at the end.
    virtual std::string_view next(size_t max) = 0;
};

// Bytes already in memory: pieces are views into them, never copies.
class MemorySource final : public ByteSource {
public:
    MemorySource(const char *data, size_t size) : data_(data), size_(size) {}
    uint64_t size() const override { return size_; }
    std::string_view next(size_t max) override {
        size_t n = std::min(max, size_ - offset_);
        std::string_view piece(data_ + offset_, n);
        offset_ += n;
        return piece;
    }

private:
    const char *data_;
    size_t size_, offset_ = 0;
};

class Store;

// An object of a store read in pieces with ranged fetches (Store::fetch),
// through one buffer: for stores whose reads are requests (S3, Azure).
class RangedReader final : public ByteSource {
public:
    RangedReader(Store &store, std::string key, std::string handle, std::string version_id, uint64_t size)
        : store_(store), key_(std::move(key)), handle_(std::move(handle)), version_id_(std::move(version_id)),
          size_(size) {}
    uint64_t size() const override { return size_; }
    std::string_view next(size_t max) override;

private:
    Store &store_;
    std::string key_, handle_, version_id_;
    uint64_t size_, offset_ = 0;
    std::string buffer_;
};

// Pieces in, whole parts out: a piece that holds whole parts is sent from
// where it lies, the rest waits in one buffer of one part, never grown
// beyond (the multipart and block uploads of S3, GCS and Azure).
class PartSplitter {
public:
    explicit PartSplitter(size_t part_size) : part_size_(part_size) { buffer_.reserve(part_size_); }
    // Calls send(part) for each part piece completes.
    template <class Send>
    void append(std::string_view piece, Send &&send) {
        if (!buffer_.empty()) {
            size_t take = std::min(piece.size(), part_size_ - buffer_.size());
            buffer_.append(piece.substr(0, take));
            piece.remove_prefix(take);
            if (buffer_.size() < part_size_) return;
            send(std::string_view(buffer_));
            buffer_.clear();
        }
        for (; piece.size() >= part_size_; piece.remove_prefix(part_size_)) send(piece.substr(0, part_size_));
        buffer_.assign(piece);
    }
    // What waits, less than a part.
    const std::string &rest() const { return buffer_; }

private:
    size_t part_size_;
    std::string buffer_;
};

// What promote() replaced, so an abort can put it back.
struct Backup {
    std::string key;
    std::string handle;       // empty: there was no object before
    bool restorable = true;   // false: the store cannot undo a promotion (S3)
    std::string promoted;     // identity of what promote() put at the key (local: device and inode)
    std::string journal;      // the entry that lets recovery finish this after a crash
};

// How a transaction that wrote to a store ended, for recovery after a crash.
enum class TransactionOutcome { Committed, Aborted, InProgress };

enum class HttpMethod { Get, Put };

// One object found by Store::list.
struct ListedObject {
    std::string key;
    uint64_t size = 0;
    double last_modified = 0;  // seconds since the epoch
    std::string etag;          // as the store reports it; may be empty
};

struct SignRequest {
    HttpMethod method = HttpMethod::Get;
    int64_t now = 0;         // seconds since the epoch
    int64_t expires_in = 0;  // seconds
    std::optional<std::string> download_as;    // response Content-Disposition file name
    std::optional<std::string> download_type;  // response Content-Type
    std::string_view version_id;                // a version of a versioned store; empty: the latest
};

// A put whose content arrives in pieces, from several calls: memory stays
// at one piece (S3: one part) whatever the object's size. Create-only, as
// create(). Destroying an upload that was neither finished nor aborted
// aborts it where that needs no network (local); see abort().
class StreamingUpload {
public:
    virtual ~StreamingUpload() = default;
    virtual void append(const char *data, size_t size) = 0;
    virtual uint64_t size() const = 0;
    virtual ObjectMeta finish() = 0;
    // Removes what was written so far (S3: AbortMultipartUpload, a request).
    virtual void abort() = 0;
    // Whether abort() talks to the network (never from an abort callback).
    virtual bool abort_uses_network() const = 0;
};

// A signed upload a client (a browser) sends straight to the store, with
// the limits inside what is signed, so the store itself refuses the rest.
enum class UploadForm { Post, Put };

struct UploadSignRequest {
    std::string key;
    std::string content_type;
    UploadForm form = UploadForm::Post;
    uint64_t min_size = 0, max_size = 0;  // Post: the length range; Put: both the exact size
    int64_t now = 0, expires_in = 0;      // seconds
};

struct SignedUpload {
    std::string url;
    std::string method;  // "POST" or "PUT"
    std::vector<std::pair<std::string, std::string>> fields;   // Post: form fields, before the file
    std::vector<std::pair<std::string, std::string>> headers;  // Put: headers to send as they are
};

class Store {
public:
    virtual ~Store() = default;

    const std::string &backend_key() const { return backend_key_; }

    // Whether objects keep attributes (object_attributes.hpp) beside their
    // bytes; create() and stage() refuse attributes where they do not.
    virtual bool keeps_attributes() const { return false; }

    // Whether operations travel over the network (S3) rather than touch
    // local files: such work never runs in a commit or abort callback,
    // where locks are held and the client waits; the worker does it.
    virtual bool uses_network() const = 0;

    // The session's default network timeouts, for backends whose options
    // set none. Called before each use, so a SET applies at once.
    virtual void set_default_timeouts(long connect_ms, long request_ms) {}

    // Throws Error(InvalidParameter) naming the key if this store cannot
    // hold it. allow_reserved accepts our own ".so-" names (the sweeper
    // removes leftovers by them).
    virtual void validate_key(std::string_view key, bool allow_reserved = false) const = 0;

    virtual ObjectMeta create(const PutRequest &request) = 0;
    // create() with the content from a source (request.data is not used),
    // holding at most a buffer (local) or one part (S3) in memory.
    virtual ObjectMeta create_from(const PutRequest &request, ByteSource &source) = 0;
    // Starts a put of request.key (request.data unused) whose content the
    // caller appends in pieces.
    virtual std::unique_ptr<StreamingUpload> begin_upload(const PutRequest &request) = 0;

    // The object (or the staged version named by handle, or the version
    // version_id of a versioned store), to read in pieces. NotFound if absent.
    // Stores without versions ignore version_id.
    virtual std::unique_ptr<ByteSource> open_reader(const std::string &key, const std::string &handle,
                                                    const std::string &version_id) = 0;
    // tag names the writer (a transaction id) in staged and backup names,
    // so a sweeper can tell which transaction left them.
    virtual ObjectMeta stage(const PutRequest &request, const std::string &tag, std::string *handle) = 0;
    virtual Backup promote(const std::string &key, const std::string &handle, const std::string &tag) = 0;
    virtual void discard(const std::string &key, const std::string &handle) = 0;
    // Puts the previous version back, but only while the key still holds
    // what promote() put there: a newer commit is never undone. Returns
    // whether it restored.
    virtual bool restore(const Backup &backup) = 0;
    virtual void drop_backup(const Backup &backup) = 0;
    // After a crash: finishes the promotions a journal records, by how the
    // transaction named by their tag ended (restore if it aborted, drop the
    // backup if it committed, leave it while it runs). Returns how many it
    // finished.
    virtual int recover(const std::function<TransactionOutcome(const std::string &tag)> &outcome) { return 0; }
    // The backups such a journal still names: recovery will put them back
    // or drop them, so they are not orphans.
    virtual std::vector<std::string> backups_awaiting_recovery() { return {}; }

    // Removes the object if it is still the version described by expected
    // (size and modification time, when known). Returns false when there
    // was nothing to remove or the key now holds another version.
    virtual bool remove(const std::string &key, const ObjectMeta *expected) = 0;

    // Whether the object (its version version_id, when given) exists.
    virtual bool exists(const std::string &key, const std::string &version_id) = 0;
    // The object (its version version_id, when given) as stored: size,
    // time, etag and checksum (which may mean reading it), guessed content
    // type, attributes. Nullopt if absent.
    virtual std::optional<ObjectMeta> stat(const std::string &key, const std::string &version_id) = 0;
    // Reads the object (or the staged version named by handle, or the
    // version version_id): length
    // bytes from offset, fewer at the end, all when length is absent. Once
    // the size is known it calls allocate(size) for the destination, so
    // the bytes land in the caller's buffer without another copy. Returns
    // the number of bytes written there. NotFound if absent.
    virtual size_t fetch(const std::string &key, const std::string &handle, const std::string &version_id,
                         uint64_t offset,
                         std::optional<uint64_t> length, const std::function<char *(uint64_t)> &allocate) = 0;

    // Every object whose key starts with prefix, in no particular order,
    // our own temporary and staged objects included (their names start
    // with ".so-").
    virtual void list(const std::string &prefix, const std::function<void(const ListedObject &)> &each) = 0;

    // Writes to url (replacing its content, reusing its buffer) a URL that
    // lets its holder GET (or PUT) the object for expires_in seconds from
    // now (seconds since the epoch). No I/O.
    virtual void sign(std::string_view key, const SignRequest &request, std::string &url) = 0;

    // A signed upload of request.key (object_attributes and encryption as
    // for a put). Throws NotSupported where this store cannot take one.
    virtual SignedUpload sign_upload(const UploadSignRequest &request) {
        throw Error(ErrorKind::NotSupported, "backend " + quoted(backend_key_) + " cannot sign uploads");
    }

    // Moves a signed upload of key from where it arrived to key itself
    // (create-only, atomic, durable). False when no such upload waits
    // (stores whose uploads land at the key: S3).
    virtual bool claim_upload(const std::string &key) { return false; }

    // Copies source_key (its version source_version, when given) of source
    // to key here without the bytes passing through us (a server-side
    // copy), create-only; nullopt when this store cannot do that from
    // source, and the caller streams the bytes instead.
    virtual std::optional<ObjectMeta> copy_within(const Store &source, const std::string &source_key,
                                                  const std::string &source_version, const std::string &key) {
        return std::nullopt;
    }

    // Whether url is a URL this backend signed, intact, unexpired at now
    // (seconds since the epoch) and valid for method. Stores whose URLs
    // their own server checks (S3) never verify here.
    virtual bool verifies_url(std::string_view url, HttpMethod method, int64_t now) const { return false; }

protected:
    explicit Store(std::string backend_key) : backend_key_(std::move(backend_key)) {}
    std::string backend_key_;
};

// Requests stores of this process have retried so far (for statistics).
uint64_t store_retries();
void note_store_retry();

// Messages shared by every backend, naming backend and key.
[[noreturn]] void throw_not_found(const std::string &backend, const std::string &key);
[[noreturn]] void throw_already_exists(const std::string &backend, const std::string &key);
// Error(InvalidParameter) "invalid stored object key ...: why".
[[noreturn]] void reject_key(std::string_view key, const std::string &why);
// The rules of an object store's key (S3, GCS, Azure): not empty, at most
// max_name_bytes with the backend's prefix of prefix_bytes before it, no
// control characters, not one of our ".so-" names unless allow_reserved.
// Stores add their own after it.
void check_object_key(std::string_view key, size_t prefix_bytes, size_t max_name_bytes, bool allow_reserved);

}  // namespace so
