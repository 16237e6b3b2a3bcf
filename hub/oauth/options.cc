#include "hub/oauth/options.h"

namespace llmbox::hub::oauth {

std::string_view SignInModeName(SignInMode mode) {
  switch (mode) {
    case SignInMode::kOidc:
      return "oidc";
    case SignInMode::kApiKey:
      return "api_key";
  }
  return "api_key";
}

}  // namespace llmbox::hub::oauth
