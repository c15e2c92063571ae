#include "core/local_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "core/crypto.hpp"
#include "core/file_reader.hpp"
#include "core/error.hpp"
#include "core/interrupts.hpp"
#include "core/mime_types.hpp"

namespace so {

namespace {

// Our own files in the backend's directories start with this; keys may
// not, so they can never collide with a temporary or staged file.
constexpr const char *kReservedPrefix = ".so-";
constexpr const char *kJournalDir = ".so-journal";
constexpr size_t kChunk = 1 << 20;

std::atomic<uint64_t> name_counter{0};

std::string unique_suffix() {
    return std::to_string(getpid()) + "-" + std::to_string(++name_counter) + "-" +
           crypto::hex(crypto::random_bytes(4));
}

double mtime_seconds(const struct stat &st) {
    // Microseconds: what a double holds exactly for current epochs, and
    // what PostgreSQL timestamps keep.
    return std::round(st.st_mtim.tv_sec * 1e6 + st.st_mtim.tv_nsec / 1e3) / 1e6;
}

// Which file this is, whatever its name: device and inode.
std::string file_identity(const struct stat &st) {
    return std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
           std::to_string(static_cast<unsigned long long>(st.st_ino));
}

// A directory stream that closes itself, also when a walk is cancelled.
struct DirCloser {
    void operator()(DIR *d) const { ::closedir(d); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// With group access, what is created takes the group's bits from its mode
// (and the directory's group and set-group-ID bit from its parent): the
// backend's umask (0077) is relaxed for that one call. chmod could not do
// it: it drops set-group-ID for a group the server is not in.
class GroupUmask {
public:
    explicit GroupUmask(bool relax, mode_t mask = 0027) : relax_(relax), old_(relax ? ::umask(mask) : 0) {}
    ~GroupUmask() {
        if (relax_) ::umask(old_);
    }

private:
    bool relax_;
    mode_t old_;
};

// A failed system call inside NewFile, unwound to its cleanup.
struct SystemError {
    int err;
};

void write_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        throw_if_interrupted();
        ssize_t n = ::write(fd, data, std::min(size, kChunk));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw SystemError{errno};
        }
        data += n;
        size -= static_cast<size_t>(n);
    }
}

}  // namespace

LocalStore::LocalStore(std::string backend_key, const LocalConfig &config)
    : Store(backend_key),
      root_(config.root),
      max_expires_in_(config.max_expires_in),
      group_access_(config.group_access),
      signer_(std::move(backend_key), config) {}

void LocalStore::fail(const std::string &what, const std::string &key, int err) const {
    if (err == ELOOP)
        throw Error(ErrorKind::PermissionDenied,
                    "stored object key " + quoted(key) + " in backend " + quoted(backend_key_) +
                        " passes through a symbolic link",
                    {}, "Keys of a local backend must name plain files and directories under its root.");
    if (err == ENOTDIR || err == EISDIR)
        throw Error(ErrorKind::InvalidParameter, "stored object key " + quoted(key) + " in backend " +
                                                     quoted(backend_key_) + " conflicts with a " +
                                                     (err == EISDIR ? "directory" : "file") + " of the same name");
    if (err == ENOSPC || err == EDQUOT)
        throw Error(ErrorKind::Io, "no space left in backend " + quoted(backend_key_) + " to " + what + " " + quoted(key));
    throw Error(ErrorKind::Io, "could not " + what + " " + quoted(key) + " in backend " + quoted(backend_key_) +
                                   ": " + std::strerror(err));
}

void LocalStore::validate_key(std::string_view key, bool allow_reserved) const {
    auto reject = [&](const std::string &why) { reject_key(key, why); };
    if (key.empty()) reject("it is empty");
    if (key.size() > kMaxKey) reject("longer than " + std::to_string(kMaxKey) + " bytes");
    if (key.front() == '/') reject("it is an absolute path");
    for (unsigned char c : key)
        if (c < 0x20 || c == 0x7f) reject("it contains a control character");
    size_t start = 0;
    while (start <= key.size()) {
        size_t end = key.find('/', start);
        if (end == std::string_view::npos) end = key.size();
        std::string_view segment = key.substr(start, end - start);
        if (segment.empty()) reject("it has an empty path segment");
        if (segment == "." || segment == "..") reject("it has a \"" + std::string(segment) + "\" segment");
        if (segment.size() > kMaxSegment)
            reject("a path segment is longer than " + std::to_string(kMaxSegment) + " bytes");
        if (!allow_reserved && segment.substr(0, 4) == kReservedPrefix)
            reject("names starting with \".so-\" are reserved");
        start = end + 1;
    }
}

UniqueFd LocalStore::open_root(bool create) const {
    UniqueFd fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd || errno != ENOENT || !create) {
        if (!fd && errno != ENOENT)
            throw Error(ErrorKind::Io, "could not open the directory of backend " + quoted(backend_key_) + ": " +
                                           std::strerror(errno));
        return fd;
    }
    // Create the root on first use, like mkdir -p, owner-only.
    for (size_t pos = 1; pos <= root_.size(); ++pos) {
        if (pos != root_.size() && root_[pos] != '/') continue;
        std::string prefix = root_.substr(0, pos);
        bool made = ::mkdir(prefix.c_str(), 0700) == 0;
        if (!made && errno != EEXIST)
            throw Error(ErrorKind::Io, "could not create the directory of backend " + quoted(backend_key_) + ": " +
                                           std::strerror(errno));
        if (made && pos == root_.size() && group_access_ && ::chmod(prefix.c_str(), dir_mode()) != 0)
            throw Error(ErrorKind::Io, "could not create the directory of backend " + quoted(backend_key_) + ": " +
                                           std::strerror(errno));
    }
    fd = UniqueFd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd)
        throw Error(ErrorKind::Io, "could not open the directory of backend " + quoted(backend_key_) + ": " +
                                       std::strerror(errno));
    return fd;
}

UniqueFd LocalStore::open_parent(const std::string &key, bool create, std::string *name) const {
    UniqueFd dir = open_root(create);
    if (!dir) return dir;
    size_t start = 0;
    for (;;) {
        size_t slash = key.find('/', start);
        if (slash == std::string::npos) break;
        std::string segment = key.substr(start, slash - start);
        int fd = ::openat(dir.get(), segment.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            if (!create) return UniqueFd();
            int made;
            {
                GroupUmask relaxed(group_access_);
                made = ::mkdirat(dir.get(), segment.c_str(), dir_mode());
            }
            if (made != 0 && errno != EEXIST) fail("create a directory for", key, errno);
            if (::fsync(dir.get()) != 0) fail("sync a directory for", key, errno);  // the new entry is durable
            fd = ::openat(dir.get(), segment.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
            int err = errno;
            struct stat st;
            if (::fstatat(dir.get(), segment.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) err = ELOOP;
            fail("open a directory for", key, err);
        }
        dir = UniqueFd(fd);
        start = slash + 1;
    }
    *name = key.substr(start);
    return dir;
}

UniqueFd LocalStore::open_file(const std::string &key, const std::string &handle) const {
    std::string name;
    UniqueFd dir = open_parent(key, false, &name);
    if (!dir) throw_not_found(backend_key_, key);
    const std::string &file = handle.empty() ? name : handle;
    // O_NONBLOCK: opening a FIFO (or a device) planted at a key must not
    // block beyond any cancel; only regular files are objects.
    UniqueFd fd(::openat(dir.get(), file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) throw_not_found(backend_key_, key);
        fail("open", key, errno);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) fail("read", key, errno);
    if (!S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) throw_not_found(backend_key_, key);
        throw Error(ErrorKind::Io, "stored object " + quoted(key) + " in backend " + quoted(backend_key_) +
                                       " is not a regular file");
    }
    return fd;
}

void LocalStore::refuse_attributes(const PutRequest &request) const {
    if (request.attributes.has_settable())
        throw Error(ErrorKind::NotSupported,
                    "local backend " + quoted(backend_key_) + " keeps no object attributes", {},
                    "Headers, storage classes and tags are kept by object stores such as S3; a web server in "
                    "front of a local backend sets its own headers.");
}

// A new file written in pieces: a temporary file in the target directory,
// hashed as it is written, published by a no-replace rename.
class LocalStore::NewFile {
public:
    NewFile(const LocalStore &store, UniqueFd dir, std::string name, const PutRequest &request)
        : store_(store), dir_(std::move(dir)), name_(std::move(name)), request_(request) {
        store_.refuse_attributes(request_);
        request_.data = nullptr;
        temp_ = std::string(kReservedPrefix) + "tmp-" + unique_suffix();
        {
            GroupUmask relaxed(store_.group_access_);
            fd_ = UniqueFd(::openat(dir_.get(), temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                    store_.file_mode()));
        }
        if (!fd_) store_.fail("create a file for", request_.key, errno);
    }
    ~NewFile() { discard(); }

    void append(const char *data, size_t size) {
        // Hash each piece as it is written: the content is read once.
        md5_.update(data, size);
        sha256_.update(data, size);
        try {
            write_all(fd_.get(), data, size);
        } catch (const SystemError &e) {
            discard();
            store_.fail("write", request_.key, e.err);
        }
        size_ += size;
    }
    uint64_t size() const { return size_; }

    // fsync, a rename that never replaces, fsync of the directory.
    ObjectMeta publish() {
        struct stat st;
        const int dir = dir_.get();
        try {
            if (::fsync(fd_.get()) != 0) throw SystemError{errno};
            if (::fstat(fd_.get(), &st) != 0) throw SystemError{errno};
            if (::renameat2(dir, temp_.c_str(), dir, name_.c_str(), RENAME_NOREPLACE) != 0) {
                if (errno != EINVAL) throw SystemError{errno};
                // File systems without RENAME_NOREPLACE: link() fails on an existing name too.
                if (::linkat(dir, temp_.c_str(), dir, name_.c_str(), 0) != 0) throw SystemError{errno};
                ::unlinkat(dir, temp_.c_str(), 0);
            }
        } catch (const SystemError &e) {
            discard();
            if (e.err == EEXIST) {
                struct stat existing;
                if (::fstatat(dir, name_.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) {
                    if (S_ISDIR(existing.st_mode)) store_.fail("write", request_.key, EISDIR);
                    if (S_ISLNK(existing.st_mode)) store_.fail("write", request_.key, ELOOP);
                }
                throw_already_exists(store_.backend_key(), request_.key);
            }
            store_.fail("write", request_.key, e.err);
        }
        temp_.clear();  // published: nothing to discard
        if (::fsync(dir) != 0) store_.fail("sync the directory of", request_.key, errno);

        ObjectMeta meta;
        meta.backend = store_.backend_key();
        meta.filename = request_.key;
        meta.content_type = request_.content_type;
        meta.size = static_cast<int64_t>(st.st_size);
        meta.last_modified = mtime_seconds(st);
        meta.etag = crypto::hex(md5_.finish());
        meta.checksum = crypto::hex(sha256_.finish());
        meta.metadata = request_.metadata_json;
        return meta;
    }

    // Removes the temporary file (once); no network, no exception.
    void discard() noexcept {
        if (temp_.empty()) return;
        ::unlinkat(dir_.get(), temp_.c_str(), 0);
        temp_.clear();
    }

private:
    const LocalStore &store_;
    UniqueFd dir_, fd_;
    std::string name_, temp_;
    PutRequest request_;
    crypto::Digest md5_{crypto::Digest::Algorithm::Md5}, sha256_{crypto::Digest::Algorithm::Sha256};
    uint64_t size_ = 0;
};

// Writes request's content to a new file dir/name. Returns the object's metadata.
ObjectMeta LocalStore::write_new_file(UniqueFd dir, const std::string &name, const PutRequest &request,
                                      ByteSource &source) const {
    NewFile file(*this, std::move(dir), name, request);
    for (std::string_view piece = source.next(kChunk); !piece.empty(); piece = source.next(kChunk))
        file.append(piece.data(), piece.size());
    return file.publish();
}

namespace {

class LocalUpload final : public StreamingUpload {
public:
    explicit LocalUpload(std::unique_ptr<LocalStore::NewFile> file) : file_(std::move(file)) {}
    void append(const char *data, size_t size) override { file_->append(data, size); }
    uint64_t size() const override { return file_->size(); }
    ObjectMeta finish() override { return file_->publish(); }
    void abort() override { file_->discard(); }
    bool abort_uses_network() const override { return false; }

private:
    std::unique_ptr<LocalStore::NewFile> file_;
};

}  // namespace

SignedUpload LocalStore::sign_upload(const UploadSignRequest &request) {
    if (request.form != UploadForm::Put)
        throw Error(ErrorKind::NotSupported, "local backend " + quoted(backend_key_) + " takes PUT uploads only",
                    {}, "Call so_sign_upload with method => 'PUT' and the size.");
    if (request.expires_in > max_expires_in_)
        throw Error(ErrorKind::InvalidParameter, "expires_in is longer than backend " + quoted(backend_key_) +
                                                     " allows (max_expires_in " + std::to_string(max_expires_in_) +
                                                     " seconds)");
    SignedUpload upload;
    upload.method = "PUT";
    upload.url = signer_.sign_upload(request.key, request.now + request.expires_in);
    upload.headers = {{"Content-Type", request.content_type}};
    // The area nginx writes into: group-writable, its group inherited.
    UniqueFd root = open_root(true);
    int made;
    {
        GroupUmask relaxed(group_access_, 0007);
        made = ::mkdirat(root.get(), kUploadArea, group_access_ ? 0770 : 0700);
    }
    if (made != 0 && errno != EEXIST) fail("make the upload area for", request.key, errno);
    return upload;
}

UniqueFd LocalStore::open_upload_parent(const std::string &key, std::string *name) const {
    UniqueFd root = open_root(false);
    if (!root) return root;
    *name = upload_name(key);
    return UniqueFd(::openat(root.get(), kUploadArea, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

bool LocalStore::claim_upload(const std::string &key) {
    std::string name;
    UniqueFd from = open_upload_parent(key, &name);
    struct stat st;
    if (!from || ::fstatat(from.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
    if (!S_ISREG(st.st_mode)) fail("adopt the upload of", key, S_ISLNK(st.st_mode) ? ELOOP : EISDIR);
    std::string target;
    UniqueFd to = open_parent(key, true, &target);
    if (::renameat2(from.get(), name.c_str(), to.get(), target.c_str(), RENAME_NOREPLACE) != 0) {
        int err = errno;
        if (err == EINVAL && ::linkat(from.get(), name.c_str(), to.get(), target.c_str(), 0) == 0) {
            ::unlinkat(from.get(), name.c_str(), 0);
        } else {
            if (err == EINVAL) err = errno;
            if (err == EEXIST) throw_already_exists(backend_key_, key);
            fail("adopt the upload of", key, err);
        }
    }
    // Durable: the new entry and the old one's removal.
    if (::fsync(to.get()) != 0 || ::fsync(from.get()) != 0) fail("sync the directory of", key, errno);
    return true;
}

std::unique_ptr<StreamingUpload> LocalStore::begin_upload(const PutRequest &request) {
    std::string name;
    UniqueFd dir = open_parent(request.key, true, &name);
    return std::make_unique<LocalUpload>(std::make_unique<NewFile>(*this, std::move(dir), name, request));
}

ObjectMeta LocalStore::create(const PutRequest &request) {
    std::string name;
    UniqueFd dir = open_parent(request.key, true, &name);
    MemorySource source(request.data, request.size);
    return write_new_file(std::move(dir), name, request, source);
}

ObjectMeta LocalStore::create_from(const PutRequest &request, ByteSource &source) {
    std::string name;
    UniqueFd dir = open_parent(request.key, true, &name);
    return write_new_file(std::move(dir), name, request, source);
}

std::unique_ptr<ByteSource> LocalStore::open_reader(const std::string &key, const std::string &handle,
                                                const std::string &) {
    UniqueFd fd = open_file(key, handle);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) fail("read", key, errno);
    return std::make_unique<FileReader>(std::move(fd), static_cast<uint64_t>(st.st_size), "stored object " + key);
}

ObjectMeta LocalStore::stage(const PutRequest &request, const std::string &tag, std::string *handle) {
    std::string name;
    UniqueFd dir = open_parent(request.key, true, &name);
    *handle = std::string(kReservedPrefix) + "new-" + tag + "-" + unique_suffix();
    MemorySource source(request.data, request.size);
    return write_new_file(std::move(dir), *handle, request, source);
}

std::string LocalStore::write_journal(const std::string &tag, const std::string &key, const std::string &backup,
                                      const std::string &promoted) const {
    UniqueFd root = open_root(true);
    if (::mkdirat(root.get(), kJournalDir, 0700) != 0 && errno != EEXIST) fail("keep a journal for", key, errno);
    UniqueFd journal(::openat(root.get(), kJournalDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!journal) fail("keep a journal for", key, errno);
    std::string name = tag + "-" + unique_suffix();
    std::string temp = ".tmp-" + name;
    std::string content = "so-journal-1\n" + key + "\n" + backup + "\n" + promoted + "\n";
    UniqueFd fd(::openat(journal.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) fail("keep a journal for", key, errno);
    try {
        write_all(fd.get(), content.data(), content.size());
        if (::fsync(fd.get()) != 0) throw SystemError{errno};
        if (::renameat(journal.get(), temp.c_str(), journal.get(), name.c_str()) != 0) throw SystemError{errno};
        if (::fsync(journal.get()) != 0) throw SystemError{errno};
    } catch (const SystemError &e) {
        ::unlinkat(journal.get(), temp.c_str(), 0);
        fail("keep a journal for", key, e.err);
    }
    return name;
}

void LocalStore::remove_journal(const std::string &entry) const {
    if (entry.empty()) return;
    UniqueFd root = open_root(false);
    if (!root) return;
    UniqueFd journal(::openat(root.get(), kJournalDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (journal) ::unlinkat(journal.get(), entry.c_str(), 0);
}

Backup LocalStore::promote(const std::string &key, const std::string &handle, const std::string &tag) {
    std::string name;
    UniqueFd dir = open_parent(key, true, &name);
    Backup backup;
    backup.key = key;
    struct stat current, staged;
    if (::fstatat(dir.get(), name.c_str(), &current, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(current.st_mode)) fail("replace", key, ELOOP);
        if (S_ISDIR(current.st_mode)) fail("replace", key, EISDIR);
    }
    if (::fstatat(dir.get(), handle.c_str(), &staged, AT_SYMLINK_NOFOLLOW) != 0) fail("replace", key, errno);
    backup.promoted = file_identity(staged);
    // Keep the current object under a backup name (a hard link: atomic and
    // no copy) so an abort can put it back.
    std::string backup_name = std::string(kReservedPrefix) + "old-" + tag + "-" + unique_suffix();
    if (::linkat(dir.get(), name.c_str(), dir.get(), backup_name.c_str(), 0) == 0)
        backup.handle = backup_name;
    else if (errno != ENOENT)
        fail("keep the previous version of", key, errno);
    // Durable before the key changes: if the server crashes between here
    // and the commit, recovery finds the entry and puts the backup back.
    try {
        if (::fsync(dir.get()) != 0) fail("sync the directory of", key, errno);
        backup.journal = write_journal(tag, key, backup.handle, backup.promoted);
    } catch (...) {
        if (!backup.handle.empty()) ::unlinkat(dir.get(), backup.handle.c_str(), 0);
        throw;
    }
    if (::renameat(dir.get(), handle.c_str(), dir.get(), name.c_str()) != 0) {
        int err = errno;
        if (!backup.handle.empty()) ::unlinkat(dir.get(), backup.handle.c_str(), 0);
        remove_journal(backup.journal);
        fail("replace", key, err);
    }
    if (::fsync(dir.get()) != 0) fail("sync the directory of", key, errno);
    return backup;
}

void LocalStore::discard(const std::string &key, const std::string &handle) {
    std::string name;
    UniqueFd dir = open_parent(key, false, &name);
    if (dir && ::unlinkat(dir.get(), handle.c_str(), 0) != 0 && errno != ENOENT) fail("discard the new version of", key, errno);
}

bool LocalStore::restore(const Backup &backup) {
    std::string name;
    UniqueFd dir = open_parent(backup.key, false, &name);
    if (!dir) fail("restore", backup.key, ENOENT);
    // Only while the key still holds what we promoted: another transaction
    // may have replaced it and committed since.
    struct stat current;
    bool ours = ::fstatat(dir.get(), name.c_str(), &current, AT_SYMLINK_NOFOLLOW) == 0 &&
                file_identity(current) == backup.promoted;
    if (!ours) {
        if (!backup.handle.empty()) ::unlinkat(dir.get(), backup.handle.c_str(), 0);
        remove_journal(backup.journal);
        return false;
    }
    int rc = backup.handle.empty() ? ::unlinkat(dir.get(), name.c_str(), 0)
                                   : ::renameat(dir.get(), backup.handle.c_str(), dir.get(), name.c_str());
    if (rc != 0 && !(backup.handle.empty() && errno == ENOENT)) fail("restore", backup.key, errno);
    if (::fsync(dir.get()) != 0) fail("sync the directory of", backup.key, errno);
    remove_journal(backup.journal);
    return true;
}

void LocalStore::drop_backup(const Backup &backup) {
    if (!backup.handle.empty()) {
        std::string name;
        UniqueFd dir = open_parent(backup.key, false, &name);
        if (dir && ::unlinkat(dir.get(), backup.handle.c_str(), 0) != 0 && errno != ENOENT)
            fail("remove the previous version of", backup.key, errno);
    }
    remove_journal(backup.journal);
}

std::vector<LocalStore::JournalEntry> LocalStore::read_journal(int journal_dir) const {
    std::vector<std::string> names;
    {
        int copy = ::dup(journal_dir);
        UniqueDir stream(copy >= 0 ? ::fdopendir(copy) : nullptr);
        if (!stream) {
            if (copy >= 0) ::close(copy);
            return {};
        }
        while (struct dirent *entry = ::readdir(stream.get())) {
            std::string name = entry->d_name;
            if (name == "." || name == "..") continue;
            if (name.rfind(".tmp-", 0) == 0) {  // an entry never finished: its promotion never started
                ::unlinkat(journal_dir, name.c_str(), 0);
                continue;
            }
            names.push_back(name);
        }
    }
    std::vector<JournalEntry> entries;
    for (const std::string &name : names) {
        // so-journal-1, key, backup, promoted
        UniqueFd entry(::openat(journal_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (!entry) continue;
        char buffer[4096];
        ssize_t n = ::read(entry.get(), buffer, sizeof buffer);
        std::vector<std::string> lines;
        std::string all(buffer, n > 0 ? static_cast<size_t>(n) : 0);
        for (size_t start = 0, end; (end = all.find('\n', start)) != std::string::npos; start = end + 1)
            lines.push_back(all.substr(start, end - start));
        if (lines.size() != 4 || lines[0] != "so-journal-1") continue;  // not ours: leave it to a human
        entries.push_back(JournalEntry{name, Backup{lines[1], lines[2], true, lines[3], name}});
    }
    return entries;
}

int LocalStore::recover(const std::function<TransactionOutcome(const std::string &tag)> &outcome) {
    UniqueFd root = open_root(false);
    if (!root) return 0;
    int fd = ::openat(root.get(), kJournalDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return 0;
    UniqueFd journal(fd);
    int finished = 0;
    for (const JournalEntry &entry : read_journal(journal.get())) {
        throw_if_interrupted();
        TransactionOutcome how = outcome(entry.name.substr(0, entry.name.find('-')));
        if (how == TransactionOutcome::InProgress) continue;
        if (how == TransactionOutcome::Committed) drop_backup(entry.backup);
        else restore(entry.backup);
        ++finished;
    }
    return finished;
}

std::vector<std::string> LocalStore::backups_awaiting_recovery() {
    UniqueFd root = open_root(false);
    if (!root) return {};
    int fd = ::openat(root.get(), kJournalDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return {};
    UniqueFd journal(fd);
    std::vector<std::string> backups;
    for (const JournalEntry &entry : read_journal(journal.get())) {
        if (entry.backup.handle.empty()) continue;  // there was nothing to keep
        // The backup sits beside its key.
        size_t slash = entry.backup.key.rfind('/');
        backups.push_back(slash == std::string::npos ? entry.backup.handle
                                                     : entry.backup.key.substr(0, slash + 1) + entry.backup.handle);
    }
    return backups;
}

bool LocalStore::remove(const std::string &key, const ObjectMeta *expected) {
    std::string name;
    UniqueFd dir = open_parent(key, false, &name);
    if (!dir) return false;
    struct stat st;
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return false;
        fail("remove", key, errno);
    }
    // A later put may have reused the key: then this is not ours to remove.
    if (expected && S_ISREG(st.st_mode)) {
        if (expected->size && *expected->size != st.st_size) return false;
        if (expected->last_modified && std::fabs(*expected->last_modified - mtime_seconds(st)) > 1e-6) return false;
    }
    if (::unlinkat(dir.get(), name.c_str(), 0) != 0) {
        if (errno == ENOENT) return false;
        fail("remove", key, errno);
    }
    return true;
}

bool LocalStore::exists(const std::string &key, const std::string &) {
    std::string name;
    UniqueFd dir = open_parent(key, false, &name);
    if (!dir) return false;
    struct stat st;
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return false;
        fail("look up", key, errno);
    }
    return S_ISREG(st.st_mode);
}

std::optional<ObjectMeta> LocalStore::stat(const std::string &key, const std::string &) {
    UniqueFd fd;
    try {
        fd = open_file(key, "");
    } catch (const Error &e) {
        if (e.kind() == ErrorKind::NotFound) return std::nullopt;
        throw;
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) fail("read", key, errno);
    crypto::Digest md5(crypto::Digest::Algorithm::Md5), sha256(crypto::Digest::Algorithm::Sha256);
    std::string buffer(kChunk, '\0');
    for (;;) {
        throw_if_interrupted();
        ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("read", key, errno);
        }
        if (n == 0) break;
        md5.update(buffer.data(), static_cast<size_t>(n));
        sha256.update(buffer.data(), static_cast<size_t>(n));
    }
    ObjectMeta meta;
    meta.backend = backend_key_;
    meta.filename = key;
    meta.content_type = guess_content_type(key);
    meta.size = st.st_size;
    meta.last_modified = mtime_seconds(st);
    meta.etag = crypto::hex(md5.finish());
    meta.checksum = crypto::hex(sha256.finish());
    return meta;
}

size_t LocalStore::fetch(const std::string &key, const std::string &handle, const std::string &, uint64_t offset,
                         std::optional<uint64_t> length, const std::function<char *(uint64_t)> &allocate) {
    UniqueFd fd = open_file(key, handle);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) fail("read", key, errno);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    uint64_t start = std::min(offset, size);
    uint64_t count = std::min(length.value_or(size), size - start);
    char *dest = allocate(count);
    size_t done = 0;
    while (done < count) {
        throw_if_interrupted();
        ssize_t n = ::pread(fd.get(), dest + done, std::min<uint64_t>(count - done, kChunk), static_cast<off_t>(start + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("read", key, errno);
        }
        if (n == 0) break;  // the file shrank under us
        done += static_cast<size_t>(n);
    }
    return done;
}

void LocalStore::sign(std::string_view key, const SignRequest &request, std::string &url) {
    if (request.download_as || request.download_type)
        throw Error(ErrorKind::NotSupported, "storage backend " + quoted(backend_key_) +
                                                 " cannot override the download's name or type: the web server in "
                                                 "front of it decides");
    if (request.expires_in > max_expires_in_)
        throw Error(ErrorKind::InvalidParameter,
                    "signed URLs of storage backend " + quoted(backend_key_) + " expire after at most " +
                        std::to_string(max_expires_in_) + " seconds",
                    {}, "The backend option max_expires_in sets the limit.");
    url = signer_.sign(std::string(key), request.method, request.now + request.expires_in);
}

namespace {

// Walks dir (named path, "" for the root) depth first, never following a
// symbolic link, reporting regular files whose key starts with prefix.
void walk(int dir, const std::string &path, const std::string &prefix,
          const std::function<void(const ListedObject &)> &each) {
    std::vector<std::string> subdirectories;
    {
        int fd = ::dup(dir);
        UniqueDir stream(fd >= 0 ? ::fdopendir(fd) : nullptr);
        if (!stream) {
            if (fd >= 0) ::close(fd);
            return;
        }
        while (struct dirent *entry = ::readdir(stream.get())) {
            throw_if_interrupted();
            std::string name = entry->d_name;
            if (name == "." || name == "..") continue;
            if (path.empty() && name == kJournalDir) continue;  // not objects: recovery's records
            std::string key = path.empty() ? name : path + "/" + name;
            struct stat st;
            if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
            if (S_ISDIR(st.st_mode)) {
                std::string as_prefix = key + "/";
                // Only descend where keys with the prefix can be.
                if (as_prefix.compare(0, prefix.size(), prefix, 0, std::min(prefix.size(), as_prefix.size())) == 0)
                    subdirectories.push_back(name);
            } else if (S_ISREG(st.st_mode) && key.compare(0, prefix.size(), prefix) == 0) {
                each(ListedObject{key, static_cast<uint64_t>(st.st_size), mtime_seconds(st), ""});
            }
        }
    }
    for (const auto &name : subdirectories) {
        UniqueFd child(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (child) walk(child.get(), path.empty() ? name : path + "/" + name, prefix, each);
    }
}

}  // namespace

void LocalStore::list(const std::string &prefix, const std::function<void(const ListedObject &)> &each) {
    UniqueFd root = open_root(false);
    if (root) walk(root.get(), "", prefix, each);
}

}  // namespace so
