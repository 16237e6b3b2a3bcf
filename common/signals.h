// common/signals.h
//
// How our daemons stop: SIGTERM and SIGINT are blocked in every thread (block them in main
// before any thread starts), and the main thread waits for them.
//
//   int main() {
//     BlockStopSignals();
//     ... start threads and servers ...
//     int signal_number = WaitForStopSignal();   // returns on SIGTERM or SIGINT
//     ... stop ...
//   }
#pragma once

namespace llmbox::common {

// Blocks SIGTERM and SIGINT in the calling thread and in every thread it starts afterwards.
void BlockStopSignals();

// Waits for SIGTERM or SIGINT (blocked by BlockStopSignals) and returns its number.
int WaitForStopSignal();

}  // namespace llmbox::common
