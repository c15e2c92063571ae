// A file read front to back through one buffer: the bytes of a stored
// local object, or a server file stored by so_put_file.
#pragma once

#include <string>

#include "core/store.hpp"
#include "core/unique_fd.hpp"

namespace so {

class FileReader final : public ByteSource {
public:
    // what names the file in messages.
    FileReader(UniqueFd fd, uint64_t size, std::string what)
        : fd_(std::move(fd)), size_(size), what_(std::move(what)) {}
    uint64_t size() const override { return size_; }
    std::string_view next(size_t max) override;

private:
    UniqueFd fd_;
    uint64_t size_;
    std::string what_;
    std::string buffer_;
};

}  // namespace so
