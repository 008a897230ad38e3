#pragma once

// The gateway's WebSocket frames (README.md, "The WebSocket protocol") as described structs,
// read and written by the cache module's JSON codec.

#include <redcoro/cache/codec.hpp>

#include <boost/describe.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redcoro::gateway {

/// What a browser sends.
struct client_frame {
  std::string op;
  std::optional<std::string> room;
  std::optional<std::string> text;
};
BOOST_DESCRIBE_STRUCT(client_frame, (), (op, room, text))

struct welcome_frame {
  std::string type;
  std::string user;
  std::string gateway;
};
BOOST_DESCRIBE_STRUCT(welcome_frame, (), (type, user, gateway))

struct message_frame {
  std::string type;
  std::string room;
  std::string id;
  std::string user;
  std::string text;
  std::int64_t ts = 0;
};
BOOST_DESCRIBE_STRUCT(message_frame, (), (type, room, id, user, text, ts))

struct history_frame {
  std::string type;
  std::string room;
  std::vector<message_frame> messages;
};
BOOST_DESCRIBE_STRUCT(history_frame, (), (type, room, messages))

struct presence_frame {
  std::string type;
  std::string room;
  std::vector<std::string> members;
};
BOOST_DESCRIBE_STRUCT(presence_frame, (), (type, room, members))

struct room_count {
  std::string room;
  std::int64_t members = 0;
};
BOOST_DESCRIBE_STRUCT(room_count, (), (room, members))

struct rooms_frame {
  std::string type;
  std::vector<room_count> rooms;
};
BOOST_DESCRIBE_STRUCT(rooms_frame, (), (type, rooms))

struct error_frame {
  std::string type;
  std::string code;
  std::string op;
  std::optional<std::string> room;
  std::string text;
};
BOOST_DESCRIBE_STRUCT(error_frame, (), (type, code, op, room, text))

/// Room and user names: 1 to 32 of A-Z a-z 0-9 _ -, so they are safe in keys, hash tags,
/// channels and the page.
inline bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/// Appends the frame's JSON. Everything a frame holds is valid UTF-8 (what the browser sent
/// was checked when it was read), so this cannot fail.
template <class Frame>
void encode_frame(const Frame& f, std::string& out) {
  cache::codec_error where;
  (void)cache::json_codec<Frame>::encode(f, out, where);
}

/// Reads a browser's frame; the error's text (for the error frame) when it is not one.
inline std::string decode_frame(std::string_view in, client_frame& out) {
  cache::codec_error where;
  if (auto ec = cache::json_codec<client_frame>::decode(in, out, where))
    return "not a frame: " + where.to_string();
  return {};
}

}  // namespace redcoro::gateway
