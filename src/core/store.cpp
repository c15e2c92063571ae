#include "core/store.hpp"

#include "core/error.hpp"

#include <atomic>

namespace so {

namespace {
std::atomic<uint64_t> retries{0};
}

uint64_t store_retries() { return retries.load(std::memory_order_relaxed); }
void note_store_retry() { retries.fetch_add(1, std::memory_order_relaxed); }

void throw_not_found(const std::string &backend, const std::string &key) {
    throw Error(ErrorKind::NotFound, "stored object " + quoted(key) + " does not exist in backend " + quoted(backend));
}

void throw_already_exists(const std::string &backend, const std::string &key) {
    throw Error(ErrorKind::AlreadyExists,
                "stored object " + quoted(key) + " already exists in backend " + quoted(backend), {},
                "Pass overwrite => true to replace it.");
}

void reject_key(std::string_view key, const std::string &why) {
    throw Error(ErrorKind::InvalidParameter, "invalid stored object key " + quoted(std::string(key)) + ": " + why);
}

void check_object_key(std::string_view key, size_t prefix_bytes, size_t max_name_bytes, bool allow_reserved) {
    if (key.empty()) reject_key(key, "it is empty");
    if (prefix_bytes + key.size() > max_name_bytes)
        reject_key(key, "longer than " + std::to_string(max_name_bytes > prefix_bytes ? max_name_bytes - prefix_bytes : 0) +
                            " bytes");
    for (unsigned char c : key)
        if (c < 0x20 || c == 0x7f) reject_key(key, "it contains a control character");
    if (!allow_reserved && key.substr(0, 4) == ".so-") reject_key(key, "names starting with \".so-\" are reserved");
}

}  // namespace so

namespace so {

std::string_view RangedReader::next(size_t max) {
    if (offset_ >= size_ || max == 0) return {};
    size_t got = store_.fetch(key_, handle_, version_id_, offset_, std::min<uint64_t>(max, size_ - offset_),
                              [&](uint64_t n) {
                                  buffer_.resize(n);
                                  return buffer_.data();
                              });
    if (got == 0) throw Error(ErrorKind::Io, "stored object " + quoted(key_) + " shrank while it was read");
    offset_ += got;
    return std::string_view(buffer_.data(), got);
}

}  // namespace so
