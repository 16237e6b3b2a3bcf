// tests/support/console.h
//
// Reading a box console (AttachStream) in tests, with a bound.
//
//   CHECK(ReadUntil(*attach, "first-line").find("first-line") != std::string::npos);
//   CHECK(StreamEnds(*attach));
#pragma once

#include <string>

#include "spoke/docker/engine.h"

namespace llmbox::testing {

// Reads until `needle` arrived, the stream ended or 10 s passed; returns all it read.
std::string ReadUntil(spoke::docker::AttachStream& stream, const std::string& needle);

// True when `stream` reports its end (OutOfRange) within 10 s.
bool StreamEnds(spoke::docker::AttachStream& stream);

}  // namespace llmbox::testing
