#include <string>

#include <catch2/catch.hpp>

#include "spoke/docker/stream.h"

namespace llmbox::spoke::docker {
namespace {

std::string Frame(int type, const std::string& payload) {
  std::string f(8, '\0');
  f[0] = static_cast<char>(type);
  const uint32_t n = static_cast<uint32_t>(payload.size());
  f[4] = static_cast<char>(n >> 24);
  f[5] = static_cast<char>(n >> 16);
  f[6] = static_cast<char>(n >> 8);
  f[7] = static_cast<char>(n);
  return f + payload;
}

TEST_CASE("multiplexed frames split at every byte decode to the same stdout and stderr",
          "[docker]") {
  const std::string stream = Frame(1, "hello ") + Frame(2, "oops\n") + Frame(1, "") +
                             Frame(1, "world\n") + Frame(2, std::string(300, 'e'));
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    FrameDecoder decoder(/*tty=*/false);
    std::string out, err;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      REQUIRE(decoder.Feed(std::string_view(stream).substr(at, chunk), &out, &err).ok());
    }
    INFO("chunk size " << chunk);
    CHECK(out == "hello world\n");
    CHECK(err == "oops\n" + std::string(300, 'e'));
    CHECK_FALSE(decoder.InFrame());
  }
}

TEST_CASE("one output string keeps stdout and stderr in arrival order", "[docker]") {
  FrameDecoder decoder(false);
  std::string all;
  REQUIRE(decoder.Feed(Frame(1, "a") + Frame(2, "b") + Frame(1, "c"), &all, &all).ok());
  CHECK(all == "abc");
}

TEST_CASE("a TTY stream passes through raw, escape codes and all", "[docker]") {
  FrameDecoder decoder(/*tty=*/true);
  std::string out, err;
  const std::string raw = std::string("\x01\x00\x00\x00", 4) + "\x1b[94mhi\r\n";
  REQUIRE(decoder.Feed(raw, &out, &err).ok());
  CHECK(out == raw);
  CHECK(err.empty());
}

TEST_CASE("an unknown stream type or an oversized frame is refused", "[docker]") {
  std::string out, err;
  FrameDecoder bad_type(false);
  auto st = bad_type.Feed(Frame(7, "x"), &out, &err);
  CHECK(absl::IsInvalidArgument(st));
  CHECK(st.message().find("unknown stream type 7") != std::string::npos);

  FrameDecoder small(false, /*max_frame_bytes=*/16);
  st = small.Feed(Frame(1, std::string(17, 'x')), &out, &err);
  CHECK(absl::IsInvalidArgument(st));
  CHECK(st.message().find("17 bytes exceeds the limit of 16") != std::string::npos);
}

TEST_CASE("a stream cut mid-frame is visible as such", "[docker]") {
  FrameDecoder decoder(false);
  std::string out, err;
  REQUIRE(decoder.Feed(Frame(1, "abcdef").substr(0, 10), &out, &err).ok());
  CHECK(out == "ab");
  CHECK(decoder.InFrame());
}

TEST_CASE("a frame header claiming 4 GiB is refused before any of its payload is held",
          "[docker]") {
  FrameDecoder decoder(/*tty=*/false);
  std::string out, err;
  const std::string header("\x01\x00\x00\x00\xff\xff\xff\xff", 8);
  auto st = decoder.Feed(header + "first bytes of the claimed payload", &out, &err);
  CHECK(absl::IsInvalidArgument(st));
  CHECK(st.message().find("a frame of 4294967295 bytes exceeds the limit") != std::string::npos);
  CHECK(out.empty());
  CHECK(err.empty());
}

TEST_CASE("a big frame's payload is passed on as it arrives, never held until it is complete",
          "[docker]") {
  const std::string payload(1 << 20, 'p');
  const std::string stream = Frame(2, payload);
  FrameDecoder decoder(/*tty=*/false);
  std::string out, err;
  size_t fed = 0;
  for (size_t at = 0; at < stream.size(); at += 4096) {
    const std::string_view chunk = std::string_view(stream).substr(at, 4096);
    REQUIRE(decoder.Feed(chunk, &out, &err).ok());
    fed += chunk.size();
    // Everything after the 8-byte header is already out.
    CHECK(err.size() == fed - 8);
  }
  CHECK(err == payload);
  CHECK(out.empty());
  CHECK_FALSE(decoder.InFrame());
}

TEST_CASE("a hundred thousand tiny and empty frames decode in one pass", "[docker]") {
  std::string stream;
  std::string expected_out, expected_err;
  for (int i = 0; i < 100'000; ++i) {
    const std::string byte(1, static_cast<char>(i % 256));
    const int type = i % 3 == 0 ? 2 : 1;
    stream += Frame(type, i % 5 == 0 ? "" : byte);
    if (i % 5 != 0) (type == 2 ? expected_err : expected_out) += byte;
  }
  FrameDecoder decoder(/*tty=*/false);
  std::string out, err;
  REQUIRE(decoder.Feed(stream, &out, &err).ok());
  CHECK(out == expected_out);
  CHECK(err == expected_err);
  CHECK_FALSE(decoder.InFrame());
}

TEST_CASE("payload bytes of every value pass through frames unchanged, NUL and escapes too",
          "[docker]") {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  FrameDecoder decoder(/*tty=*/false);
  std::string out, err;
  REQUIRE(decoder.Feed(Frame(1, all) + Frame(2, all), &out, &err).ok());
  CHECK(out == all);
  CHECK(err == all);
}

}  // namespace
}  // namespace llmbox::spoke::docker
