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
