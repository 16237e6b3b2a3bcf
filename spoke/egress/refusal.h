// spoke/egress/refusal.h
//
// One connection a box was refused, as get_llmbox shows it ("the box tried to reach X").
#pragma once

#include <chrono>
#include <string>

namespace llmbox::spoke::egress {

struct Refusal {
  std::chrono::system_clock::time_point time;
  std::string destination;  // the name asked for, or the address
  int port = 0;             // 0 when the protocol has none
  std::string protocol;     // "tcp" (through the proxy or not), "udp", "icmp", ...
  std::string rule;         // why (Decision::rule, "no route: udp", "name did not resolve", ...)
};

}  // namespace llmbox::spoke::egress
