// The local file system backend: objects are files under a root
// directory of the database server.
//
// Every path is walked one segment at a time with openat(O_NOFOLLOW), so a
// symbolic link planted inside the root can never lead outside it. Writes
// go to a temporary file in the target directory, are fsynced, and are
// renamed into place, then the directory is fsynced: a reader never sees a
// partial file and a returned put survives a crash.
#pragma once

#include "core/backend_config.hpp"
#include "core/local_signer.hpp"
#include "core/store.hpp"
#include "core/unique_fd.hpp"

namespace so {

class LocalStore final : public Store {
public:
    LocalStore(std::string backend_key, const LocalConfig &config);

    bool uses_network() const override { return false; }
    void validate_key(std::string_view key, bool allow_reserved = false) const override;
    ObjectMeta create(const PutRequest &request) override;
    ObjectMeta create_from(const PutRequest &request, ByteSource &source) override;
    // A file system keeps one version of a file: version ids are ignored.
    std::unique_ptr<ByteSource> open_reader(const std::string &key, const std::string &handle,
                                            const std::string &version_id) override;
    ObjectMeta stage(const PutRequest &request, const std::string &tag, std::string *handle) override;
    Backup promote(const std::string &key, const std::string &handle, const std::string &tag) override;
    void discard(const std::string &key, const std::string &handle) override;
    bool restore(const Backup &backup) override;
    void drop_backup(const Backup &backup) override;
    bool remove(const std::string &key, const ObjectMeta *expected) override;
    bool exists(const std::string &key, const std::string &version_id) override;
    std::optional<ObjectMeta> stat(const std::string &key, const std::string &version_id) override;
    size_t fetch(const std::string &key, const std::string &handle, const std::string &version_id, uint64_t offset,
                 std::optional<uint64_t> length,
                 const std::function<char *(uint64_t)> &allocate) override;
    void sign(std::string_view key, const SignRequest &request, std::string &url) override;
    void list(const std::string &prefix, const std::function<void(const ListedObject &)> &each) override;
    int recover(const std::function<TransactionOutcome(const std::string &tag)> &outcome) override;
    std::vector<std::string> backups_awaiting_recovery() override;

    std::unique_ptr<StreamingUpload> begin_upload(const PutRequest &request) override;
    // A PUT URL for nginx (see LocalSigner::sign_upload); makes the upload area.
    SignedUpload sign_upload(const UploadSignRequest &request) override;
    bool claim_upload(const std::string &key) override;

    // A file being written (temporary name, hashed as written) until it is
    // published at its key; used by puts and streaming uploads.
    class NewFile;

    const LocalSigner &signer() const { return signer_; }
    bool verifies_url(std::string_view url, HttpMethod method, int64_t now) const override {
        return signer_.verify(url, method, now) == LocalSigner::Verdict::Valid;
    }

    // Longest key segment: leaves room for our staging prefixes within
    // NAME_MAX (255).
    static constexpr size_t kMaxSegment = 200;
    static constexpr size_t kMaxKey = 1024;

private:
    std::string root_;
    int64_t max_expires_in_;
    bool group_access_;
    // Modes of what we create (the backend's umask is 0077: set explicitly).
    mode_t dir_mode() const { return group_access_ ? 0750 : 0700; }
    mode_t file_mode() const { return group_access_ ? 0640 : 0600; }
    // The upload area, and the name key's upload has there; invalid when
    // there is no area.
    UniqueFd open_upload_parent(const std::string &key, std::string *name) const;
    LocalSigner signer_;

    UniqueFd open_root(bool create) const;
    // The directory that holds the key's last segment, and that segment.
    // Creates missing directories when create is set; otherwise returns an
    // invalid fd when a directory is missing.
    UniqueFd open_parent(const std::string &key, bool create, std::string *name) const;
    UniqueFd open_file(const std::string &key, const std::string &handle) const;
    // The journal of promotions in flight: ROOT/.so-journal/TAG-... files
    // naming key, backup and what was promoted.
    std::string write_journal(const std::string &tag, const std::string &key, const std::string &backup,
                              const std::string &promoted) const;
    void remove_journal(const std::string &entry) const;
    // The journal's finished entries (name, and their backup), read from
    // the journal directory; unfinished ones (.tmp-) are removed.
    struct JournalEntry {
        std::string name;
        Backup backup;
    };
    std::vector<JournalEntry> read_journal(int journal_dir) const;
    ObjectMeta write_new_file(UniqueFd dir, const std::string &name, const PutRequest &request,
                              ByteSource &source) const;
    void refuse_attributes(const PutRequest &request) const;
    [[noreturn]] void fail(const std::string &what, const std::string &key, int err) const;
};

}  // namespace so
