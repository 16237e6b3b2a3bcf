// hub/activation/assets.h
//
// The activation page's stylesheet and script, compiled into the hub (served under /assets/;
// the page's Content-Security-Policy allows only same-origin files, no inline code).
#pragma once

#include <string_view>

namespace llmbox::hub::activation {

std::string_view ActivationCss();
std::string_view ActivationJs();
std::string_view FaviconSvg();

}  // namespace llmbox::hub::activation
