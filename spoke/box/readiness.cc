// spoke/box/readiness.cc
#include "spoke/box/readiness.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include <sys/stat.h>

#include "common/absl_compat.h"
#include "common/validate.h"

namespace llmbox::spoke::box {
namespace {

using common::AsAbsl;

// What is wrong with the host binary at `path`, or "" when it can run.
std::string ClaudeBinProblem(const std::string& path) {
  struct stat st {};
  const std::string where = absl::StrCat("boxes.claude_bin ", common::QuoteForMessage(path, 200));
  constexpr char kFix[] =
      ": put Claude Code's binary there (docs/box-image.md), or set boxes.claude_bin to where "
      "it is (empty: the image's own claude)";
  if (::stat(path.c_str(), &st) != 0) {
    return absl::StrCat(where, " cannot be read (", std::strerror(errno), ")", kFix);
  }
  if (!S_ISREG(st.st_mode)) return absl::StrCat(where, " is not a file", kFix);
  if ((st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) {
    return absl::StrCat(where, " is not executable: chmod +x it");
  }
  return "";
}

}  // namespace

absl::Status CheckCanCreate(docker::DockerEngine& engine, const BoxManagerOptions& options,
                            std::string_view engine_name) {
  std::vector<std::string> problems;
  if (!options.claude_bin.empty()) {
    if (std::string problem = ClaudeBinProblem(options.claude_bin); !problem.empty()) {
      problems.push_back(std::move(problem));
    }
  }
  absl::StatusOr<docker::ImageInfo> image = engine.InspectImage(options.default_image);
  if (absl::IsNotFound(image.status())) {
    problems.push_back(absl::StrCat(
        "boxes.default_image ", common::QuoteForMessage(options.default_image, 200),
        " is not on the engine at ", AsAbsl(engine_name),
        ": copy it from the host that built it (docker save ", options.default_image,
        " | gzip > box.tar.gz) and run `llmbox-spoke image import box.tar.gz --config FILE`, "
        "or build it here with deploy/box/build-image (docs/spoke.md)"));
  } else if (!image.ok()) {
    problems.push_back(
        absl::StrCat("cannot ask the engine for boxes.default_image: ", image.status().message()));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrJoin(problems, "; "));
}

}  // namespace llmbox::spoke::box
