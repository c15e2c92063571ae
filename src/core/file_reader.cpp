#include "core/file_reader.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "core/interrupts.hpp"

namespace so {

std::string_view FileReader::next(size_t max) {
    buffer_.resize(std::min<size_t>(max, size_t(8) << 20));
    for (;;) {
        throw_if_interrupted();
        ssize_t n = ::read(fd_.get(), buffer_.data(), buffer_.size());
        if (n >= 0) return std::string_view(buffer_.data(), static_cast<size_t>(n));
        if (errno != EINTR)
            throw Error(ErrorKind::Io, "could not read " + quoted(what_) + ": " + std::strerror(errno));
    }
}

}  // namespace so
