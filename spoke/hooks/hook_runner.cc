#include "spoke/hooks/hook_runner.h"

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include <nlohmann/json.hpp>

#include "common/absl_compat.h"
#include "common/status.h"
#include "common/validate.h"

namespace llmbox::spoke::hooks {
namespace {

using json = nlohmann::json;
using common::AsAbsl;

constexpr size_t kMaxFiles = 64;
constexpr size_t kMaxFileBytes = 1u << 20;
constexpr size_t kMaxTotalBytes = 4u << 20;
constexpr size_t kMaxStateBytes = 64u << 10;

std::string Label(const HookSpec& hook) {
  return absl::StrCat("hook ", hook.name, " (", hook.event, ", ", hook.command.front(), ")");
}

json FactsJson(const BoxFacts& box) {
  return {{"box_id", box.box_id},
          {"image", box.image},
          {"description", box.description},
          {"owner", box.owner},
          {"spoke", box.spoke}};
}

[[nodiscard]] absl::Status CheckPath(const HookSpec& hook, const std::string& path) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(Label(hook), ": file ", common::QuoteForMessage(path), " ", AsAbsl(why)));
  };
  if (path.empty() || path.front() != '/') return bad("must be an absolute path");
  if (path.size() > 1024) return bad("is longer than 1024 bytes");
  for (absl::string_view part : absl::StrSplit(AsAbsl(path).substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") {
      return bad("may not contain empty, \".\" or \"..\" components");
    }
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad("contains control bytes");
  }
  return absl::OkStatus();
}

// Reads one "files" entry of a create hook's reply.
[[nodiscard]] absl::StatusOr<InjectedFile> ParseFile(const HookSpec& hook, const json& entry) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(Label(hook), ": ", AsAbsl(why)));
  };
  if (!entry.is_object()) return bad("each entry of \"files\" must be an object");
  InjectedFile file;
  if (!entry.contains("path") || !entry["path"].is_string()) {
    return bad("a file entry needs a string \"path\"");
  }
  file.path = entry["path"].get<std::string>();
  LLMBOX_RETURN_IF_ERROR(CheckPath(hook, file.path));
  auto number = [&](const char* key, uint32_t max, uint32_t* out) -> absl::Status {
    if (!entry.contains(key)) return absl::OkStatus();
    if (!entry[key].is_number_unsigned() || entry[key].get<uint64_t>() > max) {
      return bad(absl::StrCat("file ", file.path, ": \"", key, "\" must be a number 0..", max));
    }
    *out = entry[key].get<uint32_t>();
    return absl::OkStatus();
  };
  LLMBOX_RETURN_IF_ERROR(number("mode", 07777, &file.mode));
  LLMBOX_RETURN_IF_ERROR(number("uid", 65535, &file.uid));
  LLMBOX_RETURN_IF_ERROR(number("gid", 65535, &file.gid));
  const bool text = entry.contains("content");
  const bool binary = entry.contains("content_base64");
  if (text == binary) {
    return bad(absl::StrCat("file ", file.path,
                            ": give exactly one of \"content\" and \"content_base64\""));
  }
  if (text) {
    if (!entry["content"].is_string()) return bad("\"content\" must be a string");
    file.content = entry["content"].get<std::string>();
  } else {
    if (!entry["content_base64"].is_string() ||
        !absl::Base64Unescape(entry["content_base64"].get<std::string>(), &file.content)) {
      return bad(absl::StrCat("file ", file.path, ": \"content_base64\" is not base64"));
    }
  }
  if (file.content.size() > kMaxFileBytes) {
    return bad(absl::StrCat("file ", file.path, " is larger than ", kMaxFileBytes, " bytes"));
  }
  return file;
}

}  // namespace

[[nodiscard]] absl::Status ValidateHooks(const std::vector<HookSpec>& hooks) {
  std::set<std::string> names;
  for (size_t i = 0; i < hooks.size(); ++i) {
    const HookSpec& hook = hooks[i];
    const std::string where = absl::StrCat("hooks[", i, "]");
    if (auto st = common::ValidateName(hook.name, "hook name"); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
    }
    if (!names.insert(hook.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": the name ", hook.name, " is used twice"));
    }
    if (hook.event != "box.create" && hook.event != "box.destroy") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": event must be box.create or box.destroy, got ",
                       common::QuoteForMessage(hook.event)));
    }
    if (hook.command.empty() || hook.command.front().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": command is empty"));
    }
    if (hook.timeout.count() <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": timeout must be positive"));
    }
  }
  return absl::OkStatus();
}

HookRunner::HookRunner(common::SubprocessRunner& runner, std::vector<HookSpec> hooks,
                       Observer observer)
    : runner_(runner), hooks_(std::move(hooks)), observer_(std::move(observer)) {}

absl::StatusOr<std::string> HookRunner::RunOne(const HookSpec& hook, const std::string& request) {
  absl::StatusOr<std::string> out = RunProcess(hook, request);
  if (observer_) observer_(hook.name, hook.event, out.status());
  return out;
}

absl::StatusOr<std::string> HookRunner::RunProcess(const HookSpec& hook,
                                                   const std::string& request) {
  common::SubprocessRequest run;
  run.argv = hook.command;
  run.env = common::EnvFromAllowlist(hook.env);
  if (run.env.find("PATH") == run.env.end()) run.env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  run.stdin_data = request;
  run.timeout = hook.timeout;
  run.max_output_bytes = hook.max_output_bytes;
  auto result = runner_.Run(run);
  if (!result.ok()) {
    return absl::Status(result.status().code(),
                        absl::StrCat(Label(hook), ": ", result.status().message()));
  }
  if (result->timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(Label(hook), ": did not finish within ",
                                                    hook.timeout.count(), " ms and was killed"));
  }
  if (result->term_signal.has_value()) {
    return absl::InternalError(
        absl::StrCat(Label(hook), ": ended by signal ", *result->term_signal));
  }
  if (result->exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(Label(hook), ": exited with status ", result->exit_code.value_or(-1)));
  }
  if (result->stdout_truncated) {
    return absl::ResourceExhaustedError(
        absl::StrCat(Label(hook), ": printed more than ", hook.max_output_bytes, " bytes"));
  }
  return std::move(result->stdout_data);
}

absl::StatusOr<CreateHooksResult> HookRunner::RunCreate(const BoxFacts& box) {
  CreateHooksResult result;
  json states = json::object();
  size_t total = 0;
  const std::string request =
      json{{"version", kProtocolVersion}, {"event", "box.create"}, {"box", FactsJson(box)}}.dump(
          -1, ' ', false, json::error_handler_t::replace);
  auto undo = [&](const absl::Status& failure) -> absl::Status {
    // The hooks that ran may have made things (accounts, keys): let destroy hooks undo them.
    (void)RunDestroy(box, states.dump(-1, ' ', false, json::error_handler_t::replace));
    return failure;
  };
  for (const HookSpec& hook : hooks_) {
    if (hook.event != "box.create") continue;
    auto out = RunOne(hook, request);
    if (!out.ok()) return undo(out.status());
    json reply = json::parse(*out, nullptr, false);
    if (reply.is_discarded() || !reply.is_object()) {
      return undo(absl::InvalidArgumentError(
          absl::StrCat(Label(hook), ": its output is not a JSON object")));
    }
    if (reply.value("version", 0) != kProtocolVersion) {
      return undo(absl::InvalidArgumentError(
          absl::StrCat(Label(hook), ": its reply must say \"version\": ", kProtocolVersion)));
    }
    if (reply.contains("state")) {
      const std::string state = reply["state"].dump(-1, ' ', false, json::error_handler_t::replace);
      if (state.size() > kMaxStateBytes) {
        return undo(absl::InvalidArgumentError(
            absl::StrCat(Label(hook), ": its state is larger than ", kMaxStateBytes, " bytes")));
      }
      states[hook.name] = reply["state"];
    }
    if (reply.contains("files")) {
      if (!reply["files"].is_array()) {
        return undo(
            absl::InvalidArgumentError(absl::StrCat(Label(hook), ": \"files\" must be a list")));
      }
      for (const json& entry : reply["files"]) {
        auto file = ParseFile(hook, entry);
        if (!file.ok()) return undo(file.status());
        total += file->content.size();
        if (result.files.size() >= kMaxFiles || total > kMaxTotalBytes) {
          return undo(absl::InvalidArgumentError(
              absl::StrCat(Label(hook), ": hooks may inject at most ", kMaxFiles, " files and ",
                           kMaxTotalBytes, " bytes in all")));
        }
        result.files.push_back(*std::move(file));
      }
    }
  }
  result.state = states.dump(-1, ' ', false, json::error_handler_t::replace);
  return result;
}

absl::Status HookRunner::RunDestroy(const BoxFacts& box, const std::string& state) {
  json parsed_state = json::parse(state, nullptr, false);
  if (parsed_state.is_discarded()) parsed_state = json::object();
  const std::string request = json{
      {"version", kProtocolVersion},
      {"event", "box.destroy"},
      {"box", FactsJson(box)},
      {"state", parsed_state}}.dump(-1, ' ', false, json::error_handler_t::replace);
  absl::Status first;
  for (const HookSpec& hook : hooks_) {
    if (hook.event != "box.destroy") continue;
    auto out = RunOne(hook, request);
    if (!out.ok() && first.ok()) first = out.status();
  }
  return first;
}

}  // namespace llmbox::spoke::hooks
