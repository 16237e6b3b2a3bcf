#include "spoke/metrics/metered_engine.h"

namespace llmbox::spoke::metrics {

const std::vector<std::string>& MeteredEngine::Operations() {
  static const auto* operations = new std::vector<std::string>{"ping",
                                                               "inspect_image",
                                                               "pull_image",
                                                               "create_container",
                                                               "start_container",
                                                               "wait_container",
                                                               "stop_container",
                                                               "kill_container",
                                                               "remove_container",
                                                               "inspect_container",
                                                               "list_containers",
                                                               "rename_container",
                                                               "resize_tty",
                                                               "attach",
                                                               "logs",
                                                               "exec",
                                                               "put_archive",
                                                               "create_network",
                                                               "connect_network",
                                                               "disconnect_network",
                                                               "remove_network",
                                                               "list_networks",
                                                               "inspect_network"};
  return *operations;
}

}  // namespace llmbox::spoke::metrics
