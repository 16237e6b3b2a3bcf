// hub/http/status_answer.h
//
// The one mapping from an absl::Status code to the HTTP status that answers a request failing
// with it. Every hub HTTP surface (the MCP endpoint, the activation pages) answers through it,
// so a code means the same status everywhere. MCP tool failures are not HTTP errors: they are
// `isError` tool results (hub/mcp/tools.h, ToolResult::Failed).
//
//   auto box = registry.Get(id);
//   if (!box.ok()) return out.Respond({.status = HttpStatusOf(box.status().code()), ...});
//
// Thread-safe; no state.
#pragma once

#include "absl/status/status.h"

namespace llmbox::hub::http {

// The HTTP status for `code`: google.rpc's published mapping (google/rpc/code.proto), so
// InvalidArgument, FailedPrecondition and OutOfRange are 400, Unauthenticated 401,
// PermissionDenied 403, NotFound 404, AlreadyExists and Aborted 409, ResourceExhausted 429,
// Cancelled 499 (the client went away), Unimplemented 501, Unavailable 503, DeadlineExceeded
// 504, and Unknown, Internal and DataLoss 500. kOk is 200. A code absl does not define is 500.
[[nodiscard]] int HttpStatusOf(absl::StatusCode code);

// True when a request failing with `code` failed on the server's side (HttpStatusOf is 5xx):
// the same request may succeed later without the client changing anything.
[[nodiscard]] bool IsServerError(absl::StatusCode code);

}  // namespace llmbox::hub::http
