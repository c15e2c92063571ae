// The one exception type of the plain C++ core. The PostgreSQL glue maps
// each kind to an SQLSTATE; core code never needs to know SQLSTATEs.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace so {

enum class ErrorKind {
    InvalidTextRepresentation,  // bad stored_object text/JSON input (22P02)
    InvalidParameter,           // bad argument: key, URL, option, range (22023)
    UndefinedObject,            // unknown backend key (42704)
    DuplicateObject,            // backend key already registered (42710)
    NotFound,                   // stored object missing (58P01)
    AlreadyExists,              // stored object exists, create-only (58P02)
    PermissionDenied,           // refused by policy or by the store (42501)
    NotSupported,               // feature not available here (0A000)
    NotConfigured,              // the backend lacks a setting this needs (55000)
    LimitExceeded,              // beyond a limit a backend sets (54000)
    Canceled,                   // interrupted by a cancel or terminate (57014)
    Io,                         // I/O or remote failure (58030)
    Internal,                   // a bug: should never reach a user (XX000)
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string &message, std::string detail = {},
          std::string hint = {})
        : std::runtime_error(message), kind_(kind), detail_(std::move(detail)),
          hint_(std::move(hint)) {}

    ErrorKind kind() const noexcept { return kind_; }
    const std::string &detail() const noexcept { return detail_; }
    const std::string &hint() const noexcept { return hint_; }

private:
    ErrorKind kind_;
    std::string detail_;
    std::string hint_;
};

// Every piece of outside text in a message goes through these: one line,
// bounded, valid UTF-8 whatever the input. Control characters (C0, DEL,
// C1) and bytes that are not UTF-8 are written as \xNN or \u00NN; text
// longer than max_bytes is cut at a character boundary and ends in "...".
void append_message_text(std::string &out, std::string_view text, size_t max_bytes);
std::string message_text(std::string_view text, size_t max_bytes = 300);
// The same into a fixed buffer (NUL-terminated, cut to fit): never
// allocates, never throws, for code that must not (transaction callbacks).
void message_text_into(char *out, size_t capacity, std::string_view text, size_t max_bytes) noexcept;

// Quotes a value for an error message the way PostgreSQL does: "value",
// made safe by append_message_text (at most 200 bytes of it shown).
// strerror(err), for messages (callable where PostgreSQL redefines strerror).
std::string errno_text(int err);

std::string quoted(std::string_view value);

}  // namespace so
