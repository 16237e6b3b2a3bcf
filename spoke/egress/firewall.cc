#include "spoke/egress/firewall.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include <arpa/inet.h>
#include <nlohmann/json.hpp>

#include "common/absl_compat.h"
#include "common/status.h"
#include "common/validate.h"

namespace llmbox::spoke::egress {
namespace {

using json = nlohmann::json;
using common::AsAbsl;

// The three dispatch maps, keyed by interface name.
constexpr const char* kInFrom = "in_from";    // input hook, iifname: the box's packets to the host
constexpr const char* kFwdFrom = "fwd_from";  // forward hook, iifname: the box's packets elsewhere
constexpr const char* kFwdTo = "fwd_to";      // forward hook, oifname: others' packets to the box
constexpr const char* kMapNames[] = {kInFrom, kFwdFrom, kFwdTo};

// What a box's refusals sets hold: each destination once, for an hour after its last packet.
constexpr int kRecordSize = 64;
constexpr const char* kRecordTimeout = "1h";

constexpr size_t kMaxTableNameChars = 64;
constexpr size_t kMaxBridgeChars = 15;  // IFNAMSIZ - 1
// Bounds on what we read back from nft: sets hold kRecordSize elements, maps three per box.
constexpr size_t kMaxListBytes = 16u << 20;
constexpr size_t kMaxSetElements = 4096;
constexpr size_t kMaxMessageChars = 400;
constexpr std::chrono::seconds kNftTimeout{20};

// One box, every field checked and in the exact text the script uses.
struct CheckedBox {
  std::string id;      // canonical box id
  std::string prefix;  // "box_<id with '-' as '_'>"
  std::string bridge;
  std::string gateway;  // dotted IPv4, canonical
  std::string subnet;   // "a.b.c.d/n", host bits cleared
};

std::string Prefix(const std::string& box_id) {
  std::string out = "box_" + box_id;
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

absl::StatusOr<std::string> CheckedId(std::string_view box_id) {
  std::string id = common::CanonicalBoxId(box_id);
  LLMBOX_RETURN_IF_ERROR(common::ValidateBoxId(id));
  return id;
}

bool ValidBridge(std::string_view name) {
  if (name.empty() || name.size() > kMaxBridgeChars) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

// Dotted IPv4 text (inet_pton's strict form) as a host-order number.
std::optional<uint32_t> ParseV4(std::string_view text) {
  // inet_pton reads up to a NUL: none may hide a tail.
  if (text.empty() || text.size() > 15 || text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  in_addr addr{};
  if (inet_pton(AF_INET, std::string(text).c_str(), &addr) != 1) return std::nullopt;
  return ntohl(addr.s_addr);
}

std::string FormatV4(uint32_t host_order) {
  in_addr addr{};
  addr.s_addr = htonl(host_order);
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr, buf, sizeof(buf));
  return buf;
}

// Canonical text of an address nft printed, nullopt when it is not one of `family`.
std::optional<std::string> CanonicalAddress(int family, std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN || text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  unsigned char bytes[sizeof(in6_addr)] = {};
  if (inet_pton(family, std::string(text).c_str(), bytes) != 1) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family, bytes, buf, sizeof(buf)) == nullptr) return std::nullopt;
  return std::string(buf);
}

absl::StatusOr<CheckedBox> Check(const BoxNetwork& box) {
  CheckedBox out;
  LLMBOX_ASSIGN_OR_RETURN(out.id, CheckedId(box.box_id));
  out.prefix = Prefix(out.id);
  auto invalid = [&](std::string_view what, const std::string& value, std::string_view want) {
    return absl::InvalidArgumentError(absl::StrCat("firewall: box ", out.id, ": ", AsAbsl(what),
                                                   " ", common::QuoteForMessage(value, 64),
                                                   " is not ", AsAbsl(want)));
  };
  if (!ValidBridge(box.bridge)) {
    return invalid("bridge", box.bridge, "an interface name ([A-Za-z0-9_.-], 1-15 characters)");
  }
  out.bridge = box.bridge;
  const std::optional<uint32_t> gateway = ParseV4(box.gateway);
  if (!gateway) return invalid("gateway", box.gateway, "a dotted IPv4 address");
  out.gateway = FormatV4(*gateway);

  const size_t slash = box.subnet.find('/');
  const std::optional<uint32_t> base = slash == std::string::npos
                                           ? std::nullopt
                                           : ParseV4(std::string_view(box.subnet).substr(0, slash));
  int prefix = -1;
  if (base) {
    const std::string bits = box.subnet.substr(slash + 1);
    if (bits.empty() || bits.size() > 2 ||
        !std::all_of(bits.begin(), bits.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(bits, &prefix) || prefix > 32) {
      prefix = -1;
    }
  }
  if (prefix < 0) return invalid("subnet", box.subnet, "an IPv4 CIDR (a.b.c.d/n)");
  const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  if ((*gateway & mask) != (*base & mask)) {
    return invalid("subnet", box.subnet, absl::StrCat("a range holding the gateway ", out.gateway));
  }
  out.subnet = absl::StrCat(FormatV4(*base & mask), "/", prefix);
  return out;
}

// nft's stderr on one line, control characters as spaces, bounded.
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (unsigned char c : text) {
    if (out.size() >= kMaxMessageChars) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c >= 0x80 ? '?' : static_cast<char>(c));
  }
  return out;
}

// The string at `key`, "" when absent or not a string (json::value would throw).
std::string Str(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return "";
  return object[key].get<std::string>();
}

struct MapElement {
  std::string map;
  std::string key;     // the interface name
  std::string target;  // the chain it jumps to
};

// What `nft -j list maps inet` says of our table.
struct TableMaps {
  bool present = false;  // the table has its three maps
  std::vector<MapElement> elements;
};

class NftFirewall final : public Firewall {
 public:
  NftFirewall(NftOptions options, common::SubprocessRunner& runner, common::Clock& clock)
      : options_(std::move(options)),
        table_(NftTableName(options_.spoke_name)),
        runner_(runner),
        clock_(clock) {}

  absl::Status Reset(const std::vector<BoxNetwork>& boxes) override {
    LLMBOX_RETURN_IF_ERROR(CheckPort());
    std::vector<CheckedBox> checked;
    std::set<std::string> ids;
    std::set<std::string> bridges;
    for (const BoxNetwork& box : boxes) {
      LLMBOX_ASSIGN_OR_RETURN(CheckedBox c, Check(box));
      if (!ids.insert(c.id).second) {
        return absl::InvalidArgumentError("firewall: box " + c.id + " is listed twice");
      }
      if (!bridges.insert(c.bridge).second) {
        return absl::InvalidArgumentError("firewall: bridge " + c.bridge +
                                          " is given to two boxes");
      }
      checked.push_back(std::move(c));
    }
    std::string script = FreshTable();
    for (const CheckedBox& box : checked) script += BoxBlock(box);
    std::lock_guard lock(mu_);
    return Apply(script, "reset the table");
  }

  absl::Status Add(const BoxNetwork& box) override {
    LLMBOX_RETURN_IF_ERROR(CheckPort());
    LLMBOX_ASSIGN_OR_RETURN(CheckedBox checked, Check(box));
    std::lock_guard lock(mu_);
    LLMBOX_ASSIGN_OR_RETURN(TableMaps maps, ReadMaps());
    std::string script;
    if (!maps.present) {
      script = FreshTable();
    } else {
      // The box's own elements (perhaps for another bridge) and any stale one for this bridge.
      std::vector<MapElement> stale;
      for (const MapElement& e : maps.elements) {
        if (IsBoxChain(checked.prefix, e.target) || e.key == checked.bridge) stale.push_back(e);
      }
      LLMBOX_ASSIGN_OR_RETURN(script, DeleteElements(stale));
    }
    script += BoxBlock(checked);
    return Apply(script, "add box " + checked.id);
  }

  absl::Status Drop() override {
    std::lock_guard lock(mu_);
    // "table; delete table": removes it whether or not it is there.
    return Apply(absl::StrCat("table inet ", table_, "\ndelete table inet ", table_, "\n"),
                 "drop the table");
  }

  absl::Status Remove(const std::string& box_id) override {
    LLMBOX_ASSIGN_OR_RETURN(std::string id, CheckedId(box_id));
    const std::string prefix = Prefix(id);
    std::lock_guard lock(mu_);
    LLMBOX_ASSIGN_OR_RETURN(TableMaps maps, ReadMaps());
    if (!maps.present) return absl::OkStatus();
    std::vector<MapElement> own;
    for (const MapElement& e : maps.elements) {
      if (IsBoxChain(prefix, e.target)) own.push_back(e);
    }
    LLMBOX_ASSIGN_OR_RETURN(std::string script, DeleteElements(own));
    // "add, flush, delete": deletes whether or not the chain or set is there. The chains that
    // jump to _refuse go first.
    for (const char* suffix : {"_in", "_fwd", "_to", "_refuse"}) {
      const std::string chain = Q(prefix + suffix);
      absl::StrAppend(&script, "add chain ", chain, "\nflush chain ", chain, "\ndelete chain ",
                      chain, "\n");
    }
    for (const char* family : {"4", "6"}) {
      const std::string set = prefix + "_v" + family;
      absl::StrAppend(&script, "add set ", Q(set), " ", SetBody(family), "\ndelete set ", Q(set),
                      "\n");
    }
    return Apply(script, "remove box " + id);
  }

  absl::StatusOr<std::vector<Refusal>> Refusals(const std::string& box_id) override {
    LLMBOX_ASSIGN_OR_RETURN(std::string id, CheckedId(box_id));
    const std::string prefix = Prefix(id);
    const common::Clock::WallTime now = clock_.Now();
    std::vector<Refusal> out;
    std::lock_guard lock(mu_);
    for (const auto& [family, suffix] : {std::pair{AF_INET, "_v4"}, std::pair{AF_INET6, "_v6"}}) {
      const std::string set = prefix + suffix;
      LLMBOX_ASSIGN_OR_RETURN(
          common::SubprocessResult r,
          Run({options_.nft_path, "-j", "list", "set", "inet", table_, set}, "", "list " + set));
      if (r.exit_code != 0) {
        if (r.stderr_data.find("No such file or directory") != std::string::npos) {
          return absl::NotFoundError(
              absl::StrCat("firewall: no host rules for box ", id, " (table ", table_, ")"));
        }
        return Failed(r, "list " + set);
      }
      LLMBOX_RETURN_IF_ERROR(ParseSet(r.stdout_data, family, now, &out));
    }
    std::sort(out.begin(), out.end(), [](const Refusal& a, const Refusal& b) {
      return std::tie(a.time, a.destination, a.protocol, a.port) <
             std::tie(b.time, b.destination, b.protocol, b.port);
    });
    if (out.size() > static_cast<size_t>(kMaxRefusals)) {
      out.erase(out.begin(), out.end() - kMaxRefusals);
    }
    return out;
  }

 private:
  absl::Status CheckPort() const {
    if (options_.proxy_port < 1 || options_.proxy_port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("firewall: proxy_port must be 1..65535, got ", options_.proxy_port));
    }
    return absl::OkStatus();
  }

  // "inet <table> <name>": how a script names our objects.
  std::string Q(const std::string& name) const { return absl::StrCat("inet ", table_, " ", name); }

  static std::string SetBody(const char* family) {
    return absl::StrCat("{ type ipv", family, "_addr . inet_proto . inet_service; size ",
                        kRecordSize, "; flags dynamic,timeout; timeout ", kRecordTimeout, "; }");
  }

  static bool IsBoxChain(const std::string& prefix, const std::string& chain) {
    return chain == prefix + "_in" || chain == prefix + "_fwd" || chain == prefix + "_to";
  }

  // Creates the table empty whether or not it existed (nft's "add, delete, define" idiom).
  std::string FreshTable() const {
    const std::string t = "inet " + table_;
    std::string s = absl::StrCat("table ", t, "\ndelete table ", t, "\ntable ", t, " {\n");
    for (const char* map : kMapNames) {
      absl::StrAppend(&s, "\tmap ", map, " {\n\t\ttype ifname : verdict\n\t}\n");
    }
    absl::StrAppend(&s,
                    "\tchain input {\n"
                    "\t\ttype filter hook input priority filter - 10; policy accept;\n"
                    "\t\tiifname vmap @",
                    kInFrom,
                    "\n\t}\n"
                    "\tchain forward {\n"
                    "\t\ttype filter hook forward priority filter - 10; policy accept;\n"
                    "\t\tiifname vmap @",
                    kFwdFrom, "\n\t\toifname vmap @", kFwdTo, "\n\t}\n}\n");
    return s;
  }

  // Adds (or rewrites) the box's sets, chains and map elements; the sets keep what they hold.
  std::string BoxBlock(const CheckedBox& box) const {
    const std::string& p = box.prefix;
    const std::string bridge = "\"" + box.bridge + "\"";
    std::string s;
    for (const char* family : {"4", "6"}) {
      absl::StrAppend(&s, "add set ", Q(p + "_v" + family), " ", SetBody(family), "\n");
    }
    auto chain = [&](const std::string& name, std::initializer_list<std::string> rules) {
      absl::StrAppend(&s, "add chain ", Q(name), "\nflush chain ", Q(name), "\n");
      for (const std::string& rule : rules)
        absl::StrAppend(&s, "add rule ", Q(name), " ", rule, "\n");
    };
    auto record = [&](const char* nfproto, const char* family, const char* addr) {
      const std::string set = "@" + p + "_v" + family;
      return std::vector<std::string>{
          absl::StrCat("meta nfproto ", nfproto, " meta l4proto { tcp, udp } update ", set, " { ",
                       addr, " daddr . meta l4proto . th dport }"),
          absl::StrCat("meta nfproto ", nfproto, " meta l4proto != { tcp, udp } update ", set,
                       " { ", addr, " daddr . meta l4proto . 0 }")};
    };
    const std::vector<std::string> v4 = record("ipv4", "4", "ip");
    const std::vector<std::string> v6 = record("ipv6", "6", "ip6");
    chain(p + "_refuse", {v4[0], v4[1], v6[0], v6[1], "counter drop"});
    chain(p + "_in",
          {absl::StrCat("ip saddr ", box.subnet, " ip daddr ", box.gateway, " tcp dport ",
                        options_.proxy_port, " accept"),
           "meta pkttype { broadcast, multicast } counter drop", "goto " + p + "_refuse"});
    chain(p + "_fwd", {"oifname " + bridge + " accept", "goto " + p + "_refuse"});
    chain(p + "_to", {"ct state established,related accept", "counter drop"});
    absl::StrAppend(&s, "add element ", Q(kInFrom), " { ", bridge, " : jump ", p, "_in }\n");
    absl::StrAppend(&s, "add element ", Q(kFwdFrom), " { ", bridge, " : jump ", p, "_fwd }\n");
    absl::StrAppend(&s, "add element ", Q(kFwdTo), " { ", bridge, " : jump ", p, "_to }\n");
    return s;
  }

  // Statements deleting `elements` (read back from nft: checked again before they go in).
  absl::StatusOr<std::string> DeleteElements(const std::vector<MapElement>& elements) const {
    std::string s;
    for (const MapElement& e : elements) {
      if (!ValidBridge(e.key)) {
        return absl::InternalError(
            absl::StrCat("firewall: table ", table_, " map ", e.map, " holds the key ",
                         common::QuoteForMessage(e.key, 64),
                         " that llmbox cannot have written; reset the table"));
      }
      absl::StrAppend(&s, "delete element ", Q(e.map), " { \"", e.key, "\" }\n");
    }
    return s;
  }

  absl::StatusOr<TableMaps> ReadMaps() {
    LLMBOX_ASSIGN_OR_RETURN(
        common::SubprocessResult r,
        Run({options_.nft_path, "-j", "list", "maps", "inet"}, "", "list maps"));
    if (r.exit_code != 0) return Failed(r, "list maps");
    const std::string what = "firewall: nft -j list maps inet";
    json doc = json::parse(r.stdout_data, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("nftables") ||
        !doc["nftables"].is_array()) {
      return absl::InternalError(what + ": the answer is not nft's JSON");
    }
    TableMaps out;
    std::set<std::string> seen;
    for (const json& item : doc["nftables"]) {
      if (!item.is_object() || !item.contains("map")) continue;
      const json& map = item["map"];
      if (!map.is_object() || Str(map, "table") != table_ || Str(map, "family") != "inet") {
        continue;
      }
      const std::string name = Str(map, "name");
      if (std::find(std::begin(kMapNames), std::end(kMapNames), name) == std::end(kMapNames)) {
        continue;
      }
      seen.insert(name);
      if (!map.contains("elem")) continue;
      if (!map["elem"].is_array()) return absl::InternalError(what + ": elem is not a list");
      for (const json& elem : map["elem"]) {
        // [key, {"jump": {"target": chain}}]
        if (!elem.is_array() || elem.size() != 2 || !elem[0].is_string() || !elem[1].is_object()) {
          return absl::InternalError(what + ": an element of " + name + " is not key : verdict");
        }
        std::string target;
        for (const char* verdict : {"jump", "goto"}) {
          if (elem[1].contains(verdict)) target = Str(elem[1][verdict], "target");
        }
        out.elements.push_back({name, elem[0].get<std::string>(), target});
      }
    }
    out.present = seen.size() == std::size(kMapNames);
    return out;
  }

  // Adds the elements of one refusals set to `out`.
  absl::Status ParseSet(const std::string& text, int family, common::Clock::WallTime now,
                        std::vector<Refusal>* out) const {
    const std::string what = "firewall: nft -j list set";
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("nftables") ||
        !doc["nftables"].is_array()) {
      return absl::InternalError(what + ": the answer is not nft's JSON");
    }
    for (const json& item : doc["nftables"]) {
      if (!item.is_object() || !item.contains("set") || !item["set"].is_object()) continue;
      const json& set = item["set"];
      const std::optional<double> set_timeout = Seconds(set, "timeout");
      if (!set.contains("elem")) continue;
      if (!set["elem"].is_array()) return absl::InternalError(what + ": elem is not a list");
      size_t n = 0;
      for (const json& entry : set["elem"]) {
        if (++n > kMaxSetElements) break;
        // {"elem": {"val": {"concat": [addr, proto, port]}, "expires": s}} (or the bare value).
        const json* value = &entry;
        std::optional<double> timeout = set_timeout;
        std::optional<double> expires;
        if (entry.is_object() && entry.contains("elem") && entry["elem"].is_object()) {
          const json& e = entry["elem"];
          if (!e.contains("val")) continue;
          value = &e["val"];
          if (auto t = Seconds(e, "timeout")) timeout = t;
          expires = Seconds(e, "expires");
        }
        std::optional<Refusal> refusal = ToRefusal(*value, family);
        if (!refusal) continue;
        auto ago = std::chrono::seconds(0);
        if (timeout && expires) {
          ago = std::chrono::seconds(static_cast<int64_t>(std::max(0.0, *timeout - *expires)));
        }
        refusal->time = now - ago;
        out->push_back(std::move(*refusal));
      }
    }
    return absl::OkStatus();
  }

  // A non-negative number of seconds of at most a day and a bit.
  static std::optional<double> Seconds(const json& object, const char* key) {
    if (!object.contains(key) || !object[key].is_number()) return std::nullopt;
    const double v = object[key].get<double>();
    if (!std::isfinite(v) || v < 0 || v > 1e7) return std::nullopt;
    return v;
  }

  static std::optional<Refusal> ToRefusal(const json& value, int family) {
    if (!value.is_object() || !value.contains("concat")) return std::nullopt;
    const json& c = value["concat"];
    if (!c.is_array() || c.size() != 3 || !c[0].is_string()) return std::nullopt;
    std::optional<std::string> address = CanonicalAddress(family, c[0].get<std::string>());
    if (!address) return std::nullopt;
    Refusal r;
    r.destination = *address;
    if (c[1].is_string()) {
      std::string name = c[1].get<std::string>();
      if (name.empty() || name.size() > 16 || !std::all_of(name.begin(), name.end(), [](char ch) {
            return absl::ascii_islower(static_cast<unsigned char>(ch)) ||
                   absl::ascii_isdigit(static_cast<unsigned char>(ch)) || ch == '-';
          })) {
        return std::nullopt;
      }
      r.protocol = name == "ipv6-icmp" ? "icmpv6" : name;
    } else if (c[1].is_number_unsigned() && c[1].get<uint64_t>() <= 255) {
      r.protocol = std::to_string(c[1].get<uint64_t>());
    } else {
      return std::nullopt;
    }
    if (!c[2].is_number_unsigned() || c[2].get<uint64_t>() > 65535) return std::nullopt;
    r.port = static_cast<int>(c[2].get<uint64_t>());
    r.rule = "no route: " + r.protocol;
    return r;
  }

  absl::Status Apply(const std::string& script, const std::string& what) {
    LLMBOX_ASSIGN_OR_RETURN(common::SubprocessResult r,
                            Run({options_.nft_path, "-f", "-"}, script, what));
    if (r.exit_code != 0) return Failed(r, what);
    return absl::OkStatus();
  }

  absl::StatusOr<common::SubprocessResult> Run(std::vector<std::string> argv, std::string input,
                                               const std::string& what) {
    common::SubprocessRequest request{
        .argv = std::move(argv),
        .env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}, {"LC_ALL", "C"}},
        .stdin_data = std::move(input),
        .max_output_bytes = kMaxListBytes,
        .timeout = kNftTimeout};
    absl::StatusOr<common::SubprocessResult> r = runner_.Run(request);
    if (!r.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("firewall (", what, "): cannot run ", options_.nft_path, ": ",
                       r.status().message(), " (install Debian's nftables)"));
    }
    if (r->timed_out) {
      return absl::DeadlineExceededError(absl::StrCat(
          "firewall (", what, "): nft did not finish within ", kNftTimeout.count(), " s"));
    }
    if (r->stdout_truncated) {
      return absl::InternalError(
          absl::StrCat("firewall (", what, "): nft printed more than ", kMaxListBytes, " bytes"));
    }
    if (!r->exit_code) r->exit_code = 128 + r->term_signal.value_or(0);
    return r;
  }

  absl::Status Failed(const common::SubprocessResult& r, const std::string& what) const {
    const std::string message =
        absl::StrCat("firewall (", what, ", table ", table_, "): nft: ", OneLine(r.stderr_data));
    if (r.stderr_data.find("Operation not permitted") != std::string::npos) {
      return absl::PermissionDeniedError(message + " (the spoke needs CAP_NET_ADMIN)");
    }
    return absl::InternalError(message);
  }

  const NftOptions options_;
  const std::string table_;
  common::SubprocessRunner& runner_;
  common::Clock& clock_;
  std::mutex mu_;  // one nft conversation at a time: Add and Remove read, then write
};

}  // namespace

std::string NftTableName(const std::string& spoke_name) {
  std::string out = "llmbox_";
  for (char c : spoke_name) {
    if (out.size() >= kMaxTableNameChars) break;
    c = absl::ascii_tolower(static_cast<unsigned char>(c));
    out.push_back((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ? c : '_');
  }
  return out;
}

std::unique_ptr<Firewall> MakeNftFirewall(NftOptions options, common::SubprocessRunner& runner,
                                          common::Clock& clock) {
  return std::make_unique<NftFirewall>(std::move(options), runner, clock);
}

std::unique_ptr<Firewall> MakeNftFirewall(NftOptions options, common::SubprocessRunner& runner) {
  return MakeNftFirewall(std::move(options), runner, common::SystemClock::Get());
}

}  // namespace llmbox::spoke::egress
