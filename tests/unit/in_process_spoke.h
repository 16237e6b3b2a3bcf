// tests/unit/in_process_spoke.h
//
// What the spoke service's unit tests share: a real SpokeNode (the assembly `llmbox-spoke
// serve` builds) in process, on a fake engine, egress and clock, named "local", with the
// hub's own gRPC client over its in-process channel. The engine has `image`, the spoke's
// default image.
//
//   testing::InProcessSpoke spoke("my-test", [](spoke::config::SpokeConfig& config) {
//     config.boxes.max_activation_attempts = 1;        // anything the test needs
//   });
//   auto created = spoke.client->CreateBox({.box_id = "b1"}, 30s);
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

#include "hub/cluster/grpc_spoke_client.h"
#include "spoke/config/spoke_config.h"
#include "spoke/node/spoke_node.h"
#include "tests/fakes/fake_box_egress.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::testing {

struct InProcessSpoke {
  // `name` names the scratch directory; `tune` changes the config before the spoke starts.
  explicit InProcessSpoke(const std::string& name,
                          const std::function<void(spoke::config::SpokeConfig&)>& tune = {},
                          const std::string& image = "llmbox-box:dev")
      : dir(name) {
    engine.AddImage(image);
    spoke::config::SpokeConfig config;
    config.name = "local";
    config.state_dir = (dir.path() / "state").string();
    config.docker.unix_socket = (dir.path() / "docker.sock").string();
    config.boxes.default_image = image;
    if (tune) tune(config);
    auto started =
        spoke::node::SpokeNode::Start(config,
                                      {.transport = spoke::node::SpokeTransport::kInProcess,
                                       .engine = &engine,
                                       .egress = &egress},
                                      clock);
    INFO(started.status().ToString());
    REQUIRE(started.ok());
    spoke_node = *std::move(started);
    client = hub::cluster::MakeGrpcSpokeClient(spoke_node->InProcessChannel());
  }

  ScratchDir dir;
  FakeClock clock;
  FakeDockerEngine engine{clock};
  FakeBoxEgress egress;
  std::unique_ptr<spoke::node::SpokeNode> spoke_node;
  std::shared_ptr<hub::cluster::SpokeClient> client;
};

}  // namespace llmbox::testing
