// spoke/box/entrypoint_script.h
//
// The in-box entrypoint (spoke/box/entrypoint.sh), compiled into the spoke so that a box
// gets exactly the wrapper this spoke was built with, injected by tar before start.
#pragma once

#include <string_view>

namespace llmbox::spoke::box {

// The script's bytes.
std::string_view EntrypointScript();

// Where the spoke puts it inside a box.
inline constexpr std::string_view kEntrypointPath = "/usr/local/lib/llmbox/entrypoint";

}  // namespace llmbox::spoke::box
