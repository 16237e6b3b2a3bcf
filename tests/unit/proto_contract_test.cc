// The gRPC contracts are the boundary between hub and spoke. These tests pin the verbs and
// the secret-carrying fields so that a change to either is deliberate.
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "llmbox/v1/box.grpc.pb.h"
#include "llmbox/v1/cluster.grpc.pb.h"

namespace {

std::set<std::string> MethodNames(const google::protobuf::ServiceDescriptor* service) {
  std::set<std::string> names;
  for (int i = 0; i < service->method_count(); ++i) names.insert(service->method(i)->name());
  return names;
}

TEST_CASE(
    "the box service offers exactly the verbs of a box's life, its network and health, the "
    "hub keys a spoke accepts and the removals it made on its own") {
  const auto* file = llmbox::v1::Box::descriptor()->file();
  REQUIRE(MethodNames(file->FindServiceByName("BoxService")) ==
          std::set<std::string>{"CreateBox", "GetBox", "ListBoxes", "DestroyBox", "SubmitCode",
                                "GetLogs", "Exec", "Health", "SetHubKeys", "SetBoxNetwork",
                                "ListRemovals"});
}

TEST_CASE("the enrollment service offers the CA, join and renewal") {
  const auto* file = llmbox::v1::JoinRequest::descriptor()->file();
  REQUIRE(MethodNames(file->FindServiceByName("Enrollment")) ==
          std::set<std::string>{"GetClusterCA", "Join", "Renew"});
}

TEST_CASE("a box message never has a field for the authorize URL or the code") {
  // The Box message is what the hub may store and show; the URL and the code travel only
  // in the create and submit messages.
  const auto* box = llmbox::v1::Box::descriptor();
  for (int i = 0; i < box->field_count(); ++i) {
    const std::string name = box->field(i)->name();
    INFO(name);
    REQUIRE(name.find("authorize") == std::string::npos);
    REQUIRE(name.find("code") == std::string::npos);
    REQUIRE(name.find("token") == std::string::npos);
  }
}

TEST_CASE("box messages round-trip through the wire format") {
  llmbox::v1::CreateBoxResponse response;
  response.mutable_box()->set_box_id("refactor-auth");
  response.mutable_box()->set_phase(llmbox::v1::BOX_PHASE_PENDING);
  response.mutable_box()->mutable_created_at()->set_seconds(1795000000);
  response.set_authorize_url("https://claude.ai/oauth/authorize?z-abc");
  llmbox::v1::CreateBoxResponse parsed;
  REQUIRE(parsed.ParseFromString(response.SerializeAsString()));
  REQUIRE(parsed.box().box_id() == "refactor-auth");
  REQUIRE(parsed.box().phase() == llmbox::v1::BOX_PHASE_PENDING);
  REQUIRE(parsed.box().created_at().seconds() == 1795000000);
  REQUIRE(parsed.authorize_url() == "https://claude.ai/oauth/authorize?z-abc");
}

}  // namespace
