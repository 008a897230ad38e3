#include <redcoro/client/connection.hpp>
#include <redcoro/client/script.hpp>

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace redcoro {

namespace detail {

std::string sha1_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("redcoro: SHA1 failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 0xf];
  }
  return out;
}

bool append_as_eval(proto::request& out, std::string_view command, std::string_view source) {
  std::vector<std::string_view> args;
  if (!proto::request::for_each_arg(command, [&](std::string_view a) { args.push_back(a); }) ||
      args.size() < 3)
    return false;
  std::string_view name;
  if (args[0] == "EVALSHA")
    name = "EVAL";
  else if (args[0] == "EVALSHA_RO")
    name = "EVAL_RO";
  else
    return false;
  out.push(name, source, std::span<const std::string_view>(args).subspan(2));
  return true;
}

// The resend: its request, and an adapter that sends reply j to the original slot slots[j].
struct script_retry {
  script_retry(const proto::request::config& cfg, proto::any_adapter a) : req(cfg), original(a) {}

  struct remap {
    static constexpr std::size_t replies = proto::any_reply_count;
    script_retry* self;
    void on_node(std::size_t j, const proto::node& n) { self->original.on_node(self->slots[j], n); }
    std::error_code error() const { return self->original.error(); }
  };

  proto::request req;
  std::vector<std::size_t> slots;
  proto::any_adapter original;
  remap remap_impl{this};
};

script_retry* make_script_retry(const proto::request& req, proto::any_adapter adapter,
                                std::span<const script_ref> scripts, const void* response,
                                reply_error_fn error_at) {
  std::unique_ptr<script_retry> r;
  for (const script_ref& s : scripts) {
    const proto::reply_error* err = error_at(response, s.index);
    if (!err || err->server_code() != "NOSCRIPT") continue;
    if (!r) r = std::make_unique<script_retry>(req.get_config(), adapter);
    if (append_as_eval(r->req, req.command_bytes(s.index), *s.source)) r->slots.push_back(s.index);
  }
  if (!r || r->slots.empty()) return nullptr;
  return r.release();
}

const proto::request& retry_request(const script_retry& r) noexcept {
  return r.req;
}

proto::any_adapter retry_adapter(script_retry& r) noexcept {
  return proto::any_adapter(r.remap_impl);
}

void free_script_retry(script_retry*& state) noexcept {
  delete state;
  state = nullptr;
}

}  // namespace detail

script::script(std::string source)
    : source_(std::make_shared<const std::string>(std::move(source))),
      sha1_(detail::sha1_hex(*source_)) {}

}  // namespace redcoro
