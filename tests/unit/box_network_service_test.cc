// A box's network policy at the spoke's box service (spoke/service/network_proto.h): the
// mapping between llmbox.v1 and the box manager's types, entries parsed before the box manager
// is asked, and a network view that leaves the spoke valid and bounded whatever the box asked
// for. The last cases go through a SpokeNode in process (fake engine) and the hub's own client.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/utf8.h"
#include "hub/cluster/grpc_spoke_client.h"
#include "spoke/service/network_proto.h"
#include "tests/unit/in_process_spoke.h"

namespace llmbox::spoke::service {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

// Bytes no UTF-8 decoder takes.
const std::string kBroken = "\xff\xfe\xc0\xaf\xed\xa0\x80"s;

v1::CreateBoxRequest CreateWith(v1::NetworkMode mode, std::vector<std::string> allow) {
  v1::CreateBoxRequest request;
  request.set_box_id("b1");
  request.mutable_network()->set_mode(mode);
  for (const auto& entry : allow) request.mutable_network()->add_allow(entry);
  return request;
}

TEST_CASE("modes map one to one between the proto and the spoke, and unspecified is no mode",
          "[network_proto]") {
  for (egress::Mode mode : {egress::Mode::kNone, egress::Mode::kAllowlist, egress::Mode::kOpen}) {
    auto back = ModeFromProto(ModeToProto(mode));
    REQUIRE(back.ok());
    CHECK(*back == mode);
  }
  CHECK(ModeToProto(egress::Mode::kNone) == v1::NETWORK_MODE_NONE);
  CHECK(ModeToProto(egress::Mode::kAllowlist) == v1::NETWORK_MODE_ALLOWLIST);
  CHECK(ModeToProto(egress::Mode::kOpen) == v1::NETWORK_MODE_OPEN);
  auto unspecified = ModeFromProto(v1::NETWORK_MODE_UNSPECIFIED);
  REQUIRE(unspecified.ok());
  CHECK_FALSE(unspecified->has_value());
  // A newer hub's mode this spoke does not know is refused, not taken as some default.
  auto unknown = ModeFromProto(7);
  CHECK(absl::IsInvalidArgument(unknown.status()));
  CHECK(std::string(unknown.status().message()).find("7") != std::string::npos);
}

TEST_CASE("a create's network becomes the box's policy, its unspecified mode the spoke's default",
          "[network_proto]") {
  auto policy = PolicyFromProto(CreateWith(v1::NETWORK_MODE_OPEN, {"pypi.org", "*.npmjs.org:443"}),
                                egress::Mode::kNone);
  REQUIRE(policy.ok());
  REQUIRE(policy->has_value());
  CHECK((*policy)->mode == egress::Mode::kOpen);
  REQUIRE((*policy)->allow.size() == 2);
  CHECK((*policy)->allow[0].kind == egress::Entry::Kind::kDomain);
  CHECK((*policy)->allow[0].name == "pypi.org");
  CHECK((*policy)->allow[1].kind == egress::Entry::Kind::kWildcard);
  CHECK((*policy)->allow[1].name == "npmjs.org");
  CHECK((*policy)->allow[1].port == 443);

  auto defaulted =
      PolicyFromProto(CreateWith(v1::NETWORK_MODE_UNSPECIFIED, {"pypi.org"}), egress::Mode::kNone);
  REQUIRE(defaulted.ok());
  REQUIRE(defaulted->has_value());
  CHECK((*defaulted)->mode == egress::Mode::kNone);
  CHECK((*defaulted)->allow.size() == 1);

  v1::CreateBoxRequest without;
  without.set_box_id("b1");
  auto none = PolicyFromProto(without, egress::Mode::kAllowlist);
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());  // the box manager applies its own default
}

TEST_CASE("an entry that does not parse is InvalidArgument naming it", "[network_proto]") {
  auto create = PolicyFromProto(CreateWith(v1::NETWORK_MODE_ALLOWLIST, {"pypi.org", "not a host!"}),
                                egress::Mode::kNone);
  CHECK(absl::IsInvalidArgument(create.status()));
  CHECK(std::string(create.status().message()).find("not a host!") != std::string::npos);
  CHECK(std::string(create.status().message()).rfind("network.allow: ", 0) == 0);

  v1::SetBoxNetworkRequest change;
  change.set_box_id("b1");
  change.add_remove("bad entry");
  auto parsed = ChangeFromProto(change);
  CHECK(absl::IsInvalidArgument(parsed.status()));
  CHECK(std::string(parsed.status().message()).find("bad entry") != std::string::npos);
  CHECK(std::string(parsed.status().message()).rfind("remove: ", 0) == 0);
}

TEST_CASE("more than 64 entries or an entry over 253 bytes is refused before it is parsed",
          "[network_proto]") {
  std::vector<std::string> many;
  for (int i = 0; i < 65; ++i) many.push_back("host" + std::to_string(i) + ".example");
  auto too_many =
      PolicyFromProto(CreateWith(v1::NETWORK_MODE_ALLOWLIST, many), egress::Mode::kNone);
  CHECK(absl::IsInvalidArgument(too_many.status()));
  CHECK(std::string(too_many.status().message()).find("at most 64") != std::string::npos);
  many.pop_back();
  CHECK(PolicyFromProto(CreateWith(v1::NETWORK_MODE_ALLOWLIST, many), egress::Mode::kNone).ok());

  v1::SetBoxNetworkRequest change;
  change.add_add(std::string(10'000, 'a') + kBroken);
  auto parsed = ChangeFromProto(change);
  CHECK(absl::IsInvalidArgument(parsed.status()));
  const std::string message(parsed.status().message());
  CHECK(message.find("longer than 253 bytes") != std::string::npos);
  CHECK(message.size() < 200);  // names the entry by its start, not all of it
  CHECK(common::IsValidUtf8(message));
}

TEST_CASE("a change carries canonical entries, and an unspecified mode leaves the mode alone",
          "[network_proto]") {
  v1::SetBoxNetworkRequest request;
  request.set_box_id("b1");
  request.add_add("PyPI.org");
  request.add_add("*.npmjs.org:443");
  request.add_remove("example.com");
  auto change = ChangeFromProto(request);
  REQUIRE(change.ok());
  CHECK(change->add == std::vector<std::string>{"pypi.org", "*.npmjs.org:443"});
  CHECK(change->remove == std::vector<std::string>{"example.com"});
  CHECK_FALSE(change->mode.has_value());

  request.set_mode(v1::NETWORK_MODE_NONE);
  change = ChangeFromProto(request);
  REQUIRE(change.ok());
  CHECK(change->mode == egress::Mode::kNone);
}

TEST_CASE("a network view leaves the spoke valid and bounded, with the newest 32 refusals",
          "[network_proto]") {
  box::BoxNetworkView view{.mode = egress::Mode::kAllowlist,
                           .allow = {"pypi.org"},
                           .base = {"api.anthropic.com:443", "claude.ai:443"},
                           .proxy = "http://10.200.0.1:3128"};
  const auto t0 = std::chrono::system_clock::time_point(1'795'000'000s);
  for (int i = 0; i < 40; ++i) {
    view.refusals.push_back({.time = t0 + std::chrono::seconds(i) + 250ms,
                             .destination = "host" + std::to_string(i) + ".example",
                             .port = 443,
                             .protocol = "tcp",
                             .rule = "not in the allowlist"});
  }
  // The box chose this name: long, and not UTF-8.
  view.refusals.back().destination = std::string(5000, 'x') + kBroken;
  view.refusals.back().rule = kBroken + std::string(5000, 'r');
  view.refusals.back().protocol = std::string(100, 'p');
  view.refusals.back().port = 70'000;

  v1::BoxNetwork out;
  NetworkToProto(view, /*with_refusals=*/true, &out);
  CHECK(out.mode() == v1::NETWORK_MODE_ALLOWLIST);
  CHECK(std::vector<std::string>(out.allow().begin(), out.allow().end()) == view.allow);
  CHECK(std::vector<std::string>(out.base().begin(), out.base().end()) == view.base);
  CHECK(out.proxy() == "http://10.200.0.1:3128");
  REQUIRE(out.refusals_size() == 32);
  CHECK(out.refusals(0).destination() == "host8.example");  // 0..7 were the oldest
  CHECK(out.refusals(0).time().seconds() == 1'795'000'008);
  CHECK(out.refusals(0).time().nanos() == 250'000'000);
  CHECK(out.refusals(0).port() == 443);
  CHECK(out.refusals(0).protocol() == "tcp");
  CHECK(out.refusals(0).rule() == "not in the allowlist");
  const v1::Refusal& last = out.refusals(31);
  CHECK(last.destination().size() <= kMaxDestinationBytes);
  CHECK(last.rule().size() <= kMaxRuleBytes);
  CHECK(last.protocol().size() <= kMaxProtocolBytes);
  CHECK(last.port() == 0);  // no such port
  for (const std::string& text : {last.destination(), last.rule(), last.protocol()}) {
    CHECK(common::IsValidUtf8(text));
  }
  // The whole message parses again (protobuf checks `string` fields for UTF-8).
  v1::BoxNetwork parsed;
  CHECK(parsed.ParseFromString(out.SerializeAsString()));

  v1::BoxNetwork listed;
  NetworkToProto(view, /*with_refusals=*/false, &listed);
  CHECK(listed.refusals_size() == 0);
  CHECK(listed.allow_size() == 1);
}

// ---- Through the service ----

struct Spoke : testing::InProcessSpoke {
  Spoke()
      : InProcessSpoke("box-network", [](config::SpokeConfig& config) {
          config.boxes.egress.box_may_allow_anything = true;
        }) {}
};

TEST_CASE("a create with an entry that does not parse is refused before any box is made",
          "[network_proto]") {
  Spoke spoke;
  auto created = spoke.client->CreateBox(
      {.box_id = "b1", .network = hub::cluster::NetworkPolicy{.allow = {"no such thing!"}}}, 30s);
  CHECK(absl::IsInvalidArgument(created.status()));
  CHECK(std::string(created.status().message()).find("no such thing!") != std::string::npos);
  auto listed = spoke.client->ListBoxes(10s);
  REQUIRE(listed.ok());
  CHECK(listed->empty());
}

TEST_CASE("a box's network comes back from get, and a change is checked before the box manager",
          "[network_proto]") {
  Spoke spoke;
  auto created = spoke.client->CreateBox({.box_id = "b1"}, 30s);
  INFO(created.status().ToString());
  REQUIRE(created.ok());
  auto got = spoke.client->GetBox("b1", 10s);
  REQUIRE(got.ok());
  CHECK(got->network.mode == hub::cluster::NetworkMode::kAllowlist);  // the spoke's default

  auto bad = spoke.client->SetBoxNetwork("b1", {.add = {"pypi.org", "two words"}}, 10s);
  CHECK(absl::IsInvalidArgument(bad.status()));
  CHECK(std::string(bad.status().message()).find("two words") != std::string::npos);

  // A valid change reaches the box manager, which applies it and answers the new network.
  auto good = spoke.client->SetBoxNetwork("b1", {.add = {"pypi.org"}}, 10s);
  INFO(good.status().ToString());
  REQUIRE(good.ok());
  CHECK(good->network.allow == std::vector<std::string>{"pypi.org"});
  CHECK(spoke.egress.Attached().at("b1").second.allow.size() == 1);
  // One the spoke's policy does not permit is refused by the box manager, saying why.
  auto refused = spoke.client->SetBoxNetwork("b1", {.add = {"10.1.2.3"}}, 10s);
  CHECK(absl::IsPermissionDenied(refused.status()));
  CHECK(std::string(refused.status().message()).find("10.1.2.3") != std::string::npos);
}

}  // namespace
}  // namespace llmbox::spoke::service
