// hub/activation/page_chrome.cc
#include "hub/activation/page_chrome.h"

#include <string>

namespace llmbox::hub::activation {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Calls `visit(name, raw value or nullopt)` for each pair until it returns true.
template <typename Visit>
void ForEachPair(std::string_view body, Visit visit) {
  while (!body.empty()) {
    const auto end = body.find('&');
    std::string_view pair = body.substr(0, end);
    const auto eq = pair.find('=');
    const std::optional<std::string_view> value =
        eq == std::string_view::npos ? std::nullopt : std::optional(pair.substr(eq + 1));
    if (visit(FormDecode(pair.substr(0, eq)), value)) return;
    if (end == std::string_view::npos) break;
    body.remove_prefix(end + 1);
  }
}

}  // namespace

std::string FormDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

http::Headers SecurityHeaders(std::string_view content_type, std::string_view form_targets) {
  std::string csp = "default-src 'self'; base-uri 'none'; form-action 'self'";
  if (!form_targets.empty()) csp += " " + std::string(form_targets);
  csp += "; frame-ancestors 'none'";
  return {{"Content-Type", std::string(content_type)},
          {"Cache-Control", "no-store"},
          {"Referrer-Policy", "no-referrer"},
          {"X-Content-Type-Options", "nosniff"},
          {"X-Frame-Options", "DENY"},
          {"Content-Security-Policy", std::move(csp)}};
}

std::string RenderPage(const PageFrame& page) {
  std::string html =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta name=\"robots\" content=\"noindex\">"
      "<title>" +
      HtmlEscape(page.title) +
      " \xC2\xB7 llmbox</title>"
      "<link rel=\"icon\" href=\"/assets/favicon.svg\" type=\"image/svg+xml\">"
      "<link rel=\"stylesheet\" href=\"/assets/activation.css\">"
      "<script src=\"/assets/activation.js\" defer></script>";
  if (page.refresh) html += "<noscript><meta http-equiv=\"refresh\" content=\"3\"></noscript>";
  html += "</head><body class=\"state-" + page.state +
          "\"><div class=\"top\">"
          "<span class=\"brand\">llmbox</span><span class=\"badge\">" +
          HtmlEscape(page.badge) + "</span></div><main data-state=\"" + page.state + "\"";
  if (!page.status_url.empty()) {
    html += " data-status-url=\"" + HtmlEscape(page.status_url) + "\"";
  }
  html += ">" + page.body + "</main>";
  if (!page.signed_in_as.empty()) {
    html +=
        "<div class=\"who\">Signed in as <strong>" + HtmlEscape(page.signed_in_as) + "</strong>";
    if (!page.sign_out_action.empty()) {
      html += "<form method=\"post\" action=\"" + HtmlEscape(page.sign_out_action) +
              "\"><button class=\"link\" type=\"submit\">Sign out</button></form>";
    }
    html += "</div>";
  }
  if (!page.footer.empty()) html += "<footer>" + HtmlEscape(page.footer) + "</footer>";
  html += "</body></html>\n";
  return html;
}

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormField(std::string_view body, std::string_view field) {
  std::string found;
  ForEachPair(body, [&](const std::string& name, std::optional<std::string_view> value) {
    if (name != field) return false;
    if (value) found = FormDecode(*value);
    return true;
  });
  return found;
}

std::size_t FormFieldCount(std::string_view body, std::string_view field) {
  std::size_t count = 0;
  ForEachPair(body, [&](const std::string& name, std::optional<std::string_view>) {
    if (name == field) ++count;
    return false;
  });
  return count;
}

std::string FormEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string CookieValue(std::optional<std::string_view> header, std::string_view name) {
  if (!header) return "";
  std::string_view rest = *header;
  while (!rest.empty()) {
    const auto end = rest.find(';');
    std::string_view part = rest.substr(0, end);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=') {
      return std::string(part.substr(name.size() + 1));
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return "";
}

std::string ClientOf(const http::Request& request) {
  return request.client_address.empty() ? request.remote_address : request.client_address;
}

std::string Minutes(std::chrono::seconds wait) {
  const auto minutes = (wait.count() + 59) / 60;
  return std::to_string(minutes) + (minutes == 1 ? " minute" : " minutes");
}

}  // namespace llmbox::hub::activation
