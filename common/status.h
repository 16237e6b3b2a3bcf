// common/status.h
//
// Error plumbing shared by every module: absl::Status is the error currency across module
// boundaries, and these macros keep the happy path readable.
//
//   absl::StatusOr<Config> Load(std::string_view path) {
//     LLMBOX_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     LLMBOX_RETURN_IF_ERROR(CheckSyntax(text));
//     return Parse(text);
//   }
//
//   LLMBOX_CHECK(fd >= 0, "socket fd must be open here");  // aborts with the message
//
// Debian 12's Abseil has no public RETURN_IF_ERROR / ASSIGN_OR_RETURN, hence our own.
#pragma once

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llmbox::common::internal {

// Prints "CHECK failed at FILE:LINE: CONDITION: MESSAGE" to stderr and aborts.
[[noreturn]] void CheckFailed(std::string_view file, int line, std::string_view condition,
                              std::string_view message);

}  // namespace llmbox::common::internal

#define LLMBOX_STATUS_CONCAT_INNER_(a, b) a##b
#define LLMBOX_STATUS_CONCAT_(a, b) LLMBOX_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function if not OK.
#define LLMBOX_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status llmbox_status_ = (expr);          \
    if (!llmbox_status_.ok()) return llmbox_status_; \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status from the enclosing
// function, otherwise moves the value into `lhs` (a declaration or an assignable lvalue).
#define LLMBOX_ASSIGN_OR_RETURN(lhs, rexpr) \
  LLMBOX_ASSIGN_OR_RETURN_IMPL_(LLMBOX_STATUS_CONCAT_(llmbox_statusor_, __LINE__), lhs, rexpr)

#define LLMBOX_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

// For "cannot happen": aborts the process with a message when `cond` is false. Active in
// every build type; never use it for input a user or peer can influence.
#define LLMBOX_CHECK(cond, message)                                                           \
  do {                                                                                        \
    if (!(cond)) ::llmbox::common::internal::CheckFailed(__FILE__, __LINE__, #cond, message); \
  } while (false)
