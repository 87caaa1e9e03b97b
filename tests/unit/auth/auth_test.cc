// auth/: identities from certificates made by the same library that
// `faultline certs` uses, the role check, unix sockets and the audit log.
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/audit_log.h"
#include "auth/caller.h"
#include "auth/certs.h"
#include "auth/identity.h"
#include "auth/unix_listener.h"

namespace faultline::auth {
namespace {

using ::testing::HasSubstr;

class TempDir {
 public:
  explicit TempDir(const std::string& label)
      : path_(std::filesystem::temp_directory_path() /
              fmt::format("fltest-{}-{}", getpid(), label)) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Path(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(Identity, NamesFollowThePattern) {
  for (const char* ok : {"db-1", "a", "0", "web.a1", "x-y.z-9",
                         "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc"}) {
    EXPECT_TRUE(ValidateName("info.name", ok).ok()) << ok;
  }
  struct Bad {
    std::string name;
    std::string says;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"db-1\nweb-2   10.0.0.9:7601", "control character \\x0a"},
           {"\x1b[31mdb-1", "control character \\x1b"},
           {"Db-1", "upper-case letter 'D'"},
           {std::string(64, 'a'), "64 characters, at most 63"},
           {"-db", "character '-' at position 0"},
           {".db", "character '.'"},
           {"db_1", "character '_'"},
           {"db 1", "character ' '"},
           {"", "required"},
           {"d\xc3\xa9", "non-ASCII"},
       }) {
    absl::Status st = ValidateName("info.name", bad.name);
    ASSERT_FALSE(st.ok()) << bad.name;
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(st.message()), HasSubstr("info.name"));
    EXPECT_THAT(std::string(st.message()), HasSubstr(bad.says)) << st;
    EXPECT_EQ(std::string(st.message()).find('\n'), std::string::npos) << "raw newline echoed";
    EXPECT_EQ(std::string(st.message()).find('\x1b'), std::string::npos) << "raw ESC echoed";
  }
}

TEST(Identity, SpiffeUris) {
  auto id = ParseSpiffeUri("spiffe://faultline/agent/db-1");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->role, Role::kAgent);
  EXPECT_EQ(id->name, "db-1");
  EXPECT_EQ(id->Uri(), "spiffe://faultline/agent/db-1");
  for (const char* role : {"controller", "operator", "viewer"}) {
    auto r = ParseSpiffeUri(fmt::format("spiffe://faultline/{}/x", role));
    ASSERT_TRUE(r.ok()) << role;
    EXPECT_STREQ(RoleName(r->role), role);
  }
  EXPECT_TRUE(absl::IsNotFound(ParseSpiffeUri("spiffe://other/agent/db-1").status()));
  EXPECT_TRUE(absl::IsNotFound(ParseSpiffeUri("https://faultline/agent/db-1").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseSpiffeUri("spiffe://faultline/root/db-1").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseSpiffeUri("spiffe://faultline/agent/DB").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseSpiffeUri("spiffe://faultline/agent/a/b").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseSpiffeUri("spiffe://faultline/agent").status()));
}

TEST(Identity, DnsFallback) {
  auto id = ParseDnsIdentity("db-1.example.agent.faultline");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->role, Role::kAgent);
  EXPECT_EQ(id->name, "db-1.example");
  EXPECT_TRUE(absl::IsNotFound(ParseDnsIdentity("localhost").status()));
  EXPECT_TRUE(absl::IsNotFound(ParseDnsIdentity("db.web.faultline").status()));
  EXPECT_TRUE(absl::IsNotFound(ParseDnsIdentity("agent.faultline").status()));
}

TEST(Identity, FromSans) {
  SubjectAltNames sans;
  sans.dns = {"localhost", "x.viewer.faultline"};
  sans.uris = {"https://example.com", "spiffe://faultline/operator/alice"};
  auto id = IdentityFromSans(sans);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->Uri(), "spiffe://faultline/operator/alice");  // URI before DNS

  sans.uris = {};
  id = IdentityFromSans(sans);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->Uri(), "spiffe://faultline/viewer/x");

  sans.uris = {"spiffe://faultline/operator/alice", "spiffe://faultline/viewer/alice"};
  id = IdentityFromSans(sans);
  ASSERT_FALSE(id.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(id.status()));
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("ambiguous"));

  sans = {};
  sans.dns = {"localhost"};
  id = IdentityFromSans(sans);
  ASSERT_FALSE(id.ok());
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("spiffe://faultline/<role>/<name>"));
}

TEST(Certs, InitAndIssueWithOpenSslLibrary) {
  TempDir dir("certs");
  const std::string ca_dir = dir.Path("ca");
  auto ca = InitCa(ca_dir);
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(Mode(ca->key), 0600u);
  EXPECT_EQ(Mode(ca_dir), 0700u);
  EXPECT_THAT(Read(ca->key), HasSubstr("BEGIN PRIVATE KEY"));
  // A second init would invalidate every certificate: refused without force.
  auto again = InitCa(ca_dir);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("--force"));

  IssueOptions o;
  o.ips = {"10.88.0.3", "::1"};
  o.dns = {"db-1.example"};
  auto issued = IssueCertificate(ca_dir, {Role::kAgent, "db-1"}, o);
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_EQ(issued->cert, ca_dir + "/agent-db-1.crt");
  EXPECT_EQ(Mode(issued->key), 0600u);
  const std::string pem = Read(issued->cert);
  auto id = IdentityFromCertificatePem(pem);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->Uri(), "spiffe://faultline/agent/db-1");
  auto sans = CertificateSans(pem);
  ASSERT_TRUE(sans.ok());
  EXPECT_THAT(sans->ips, ::testing::ElementsAre("10.88.0.3", "::1"));
  EXPECT_THAT(sans->dns, ::testing::ElementsAre("db-1.example"));

  // Signed by the CA, EC P-256.
  BIO* cb = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  const std::string ca_pem = Read(ca->cert);
  BIO* ab = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509* ca_cert = PEM_read_bio_X509(ab, nullptr, nullptr, nullptr);
  BIO_free(ab);
  ASSERT_NE(cert, nullptr);
  ASSERT_NE(ca_cert, nullptr);
  EXPECT_EQ(X509_verify(cert, X509_get0_pubkey(ca_cert)), 1);
  EXPECT_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(cert)), 256);
  X509_free(cert);
  X509_free(ca_cert);

  // Refusals name the flag.
  auto bad_ip = IssueCertificate(ca_dir, {Role::kAgent, "db-2"}, {{"10.0.0.1,URI:x"}, {}, 30, false});
  ASSERT_FALSE(bad_ip.ok());
  EXPECT_THAT(std::string(bad_ip.status().message()), HasSubstr("--ip"));
  auto bad_dns = IssueCertificate(ca_dir, {Role::kAgent, "db-2"}, {{}, {"a,URI:x"}, 30, false});
  ASSERT_FALSE(bad_dns.ok());
  EXPECT_THAT(std::string(bad_dns.status().message()), HasSubstr("--dns"));
  auto bad_name = IssueCertificate(ca_dir, {Role::kAgent, "DB"});
  ASSERT_FALSE(bad_name.ok());
  EXPECT_THAT(std::string(bad_name.status().message()), HasSubstr("NAME"));
  auto exists = IssueCertificate(ca_dir, {Role::kAgent, "db-1"});
  ASSERT_FALSE(exists.ok());
  EXPECT_TRUE(absl::IsAlreadyExists(exists.status()));
  IssueOptions force;
  force.force = true;
  EXPECT_TRUE(IssueCertificate(ca_dir, {Role::kAgent, "db-1"}, force).ok());
  auto no_ca = IssueCertificate(dir.Path("nothing"), {Role::kViewer, "v"});
  ASSERT_FALSE(no_ca.ok());
  EXPECT_THAT(std::string(no_ca.status().message()), HasSubstr("certs init"));
}

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCa(dir_.path()).ok());
    for (auto [role, name] : std::vector<std::pair<Role, std::string>>{
             {Role::kViewer, "v"}, {Role::kOperator, "alice"}, {Role::kAgent, "db-1"}}) {
      auto files = IssueCertificate(dir_.path(), {role, name});
      ASSERT_TRUE(files.ok()) << files.status();
      pem_[name] = Read(files->cert);
    }
  }
  TempDir dir_{"authz"};
  std::map<std::string, std::string> pem_;
};

TEST_F(AuthorizerTest, RolesFromCertificates) {
  Authorizer authz(AuthorizerOptions{});
  const std::vector<Role> mutators = {Role::kController, Role::kOperator};
  auto op = authz.Authorize(PeerInfo{"ipv4:10.0.0.1:1", pem_["alice"]}, "Inject", mutators);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->Who(), "spiffe://faultline/operator/alice");
  EXPECT_EQ(op->Principal(), "spiffe://faultline/operator/alice");

  auto viewer = authz.Authorize(PeerInfo{"ipv4:10.0.0.1:2", pem_["v"]}, "Inject", mutators);
  ASSERT_FALSE(viewer.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(viewer.status()));
  EXPECT_THAT(std::string(viewer.status().message()),
              HasSubstr("Inject: spiffe://faultline/viewer/v may not call it (role viewer); it "
                        "needs controller or operator"));
  auto agent = authz.Authorize(PeerInfo{"ipv4:10.0.0.1:3", pem_["db-1"]}, "Inject", mutators);
  EXPECT_TRUE(absl::IsPermissionDenied(agent.status()));

  // No certificate on TCP: refused unless the daemon runs --insecure.
  auto none = authz.Authorize(PeerInfo{"ipv4:10.0.0.1:4", ""}, "Inject", mutators);
  EXPECT_TRUE(absl::IsUnauthenticated(none.status()));
  AuthorizerOptions insecure;
  insecure.insecure = true;
  auto plain = Authorizer(insecure).Authorize(PeerInfo{"ipv4:10.0.0.1:4", ""}, "Inject", mutators);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->Principal(), "insecure");
  // --insecure never covers a unix peer the listener did not vouch for.
  EXPECT_FALSE(Authorizer(insecure).Identify(PeerInfo{"fd:7", ""}).ok());
}

TEST(Authorizer, UnixPeers) {
  UnixPeerTable table;
  table.Set(7, ClassifyUnixPeer(100, 0, 0, 1234, std::nullopt));
  table.Set(8, ClassifyUnixPeer(101, 4242, 4242, 1234, std::nullopt));
  AuthorizerOptions o;
  o.unix_peers = &table;
  Authorizer authz(o);
  auto root = authz.Authorize(PeerInfo{"fd:7", ""}, "Inject", {Role::kOperator});
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->Who(), "unix uid=0 pid=100");
  EXPECT_EQ(root->Principal(), "unix:uid=0");
  EXPECT_FALSE(authz.Authorize(PeerInfo{"fd:7", ""}, "Register", {Role::kAgent}).ok());
  auto stranger = authz.Authorize(PeerInfo{"fd:8", ""}, "Inject", {Role::kOperator});
  ASSERT_FALSE(stranger.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(stranger.status()));
  EXPECT_THAT(std::string(stranger.status().message()), HasSubstr("uid 4242"));
  EXPECT_FALSE(authz.Authorize(PeerInfo{"fd:9", ""}, "Inject", {Role::kOperator}).ok());
  EXPECT_FALSE(table.Find("fd:x").has_value());
  EXPECT_FALSE(table.Find("ipv4:1.2.3.4:5").has_value());
}

TEST(UnixPeerRule, RootOwnUserAndGroupOnly) {
  EXPECT_TRUE(ClassifyUnixPeer(1, 0, 0, 1000, std::nullopt).trusted);
  EXPECT_TRUE(ClassifyUnixPeer(1, 1000, 1000, 1000, std::nullopt).trusted);
  UnixPeer other = ClassifyUnixPeer(1, 2000, 2000, 1000, std::nullopt);
  EXPECT_FALSE(other.trusted);
  EXPECT_THAT(other.reason, HasSubstr("not root"));
  EXPECT_TRUE(ClassifyUnixPeer(1, 2000, 3000, 1000, gid_t{3000}).trusted);  // primary group
  EXPECT_FALSE(ClassifyUnixPeer(1, 2000, 2000, 1000, gid_t{3000}).trusted);
}

TEST(UnixListener, SocketIsPrivateWhateverTheUmask) {
  TempDir dir("unix");
  UnixPeerTable peers;
  const mode_t old = ::umask(0);
  auto listener = UnixListener::Create(dir.Path("a.sock"), "", &peers);
  ::umask(old);
  ASSERT_TRUE(listener.ok()) << listener.status();
  struct stat st {};
  ASSERT_EQ(::lstat(dir.Path("a.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  listener->reset();  // removes the socket file
  EXPECT_NE(::access(dir.Path("a.sock").c_str(), F_OK), 0);

  // --socket-group: 0660 and that group.
  struct group* g = ::getgrnam("nogroup");
  if (g != nullptr) {
    auto grouped = UnixListener::Create(dir.Path("g.sock"), "nogroup", &peers);
    ASSERT_TRUE(grouped.ok()) << grouped.status();
    ASSERT_EQ(::lstat(dir.Path("g.sock").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    EXPECT_EQ(st.st_gid, g->gr_gid);
  }
  auto no_group = UnixListener::Create(dir.Path("n.sock"), "fltest-no-such-group", &peers);
  ASSERT_FALSE(no_group.ok());
  EXPECT_THAT(std::string(no_group.status().message()), HasSubstr("--socket-group"));

  // A stale socket is replaced; any other file is refused.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", dir.Path("stale.sock").c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  EXPECT_TRUE(UnixListener::Create(dir.Path("stale.sock"), "", &peers).ok());
  std::ofstream(dir.Path("file")) << "x";
  auto refused = UnixListener::Create(dir.Path("file"), "", &peers);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("not a socket"));
}

TEST(AuditLog, OneFsyncedJsonLinePerCallWithoutSecrets) {
  TempDir dir("audit");
  const std::string path = dir.Path("audit.log");
  auto log = AuditLog::Open(path, "agent");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(Mode(path), 0600u);
  Caller caller;
  caller.kind = CallerKind::kCertificate;
  caller.identity = {Role::kOperator, "alice"};
  caller.roles = {Role::kOperator};
  Audit(log->get(), "Inject", PeerInfo{"ipv4:10.0.0.1:5", "-----BEGIN CERTIFICATE-----"},
        caller, "{\"spec\":{\"pause\":{}}}", absl::OkStatus());
  Audit(log->get(), "Inject", PeerInfo{"ipv4:10.0.0.1:6", ""},
        absl::StatusOr<Caller>(absl::UnauthenticatedError("no certificate")), "{\"x\":1}",
        absl::PermissionDeniedError("Inject: needs\noperator"));
  Audit(nullptr, "Inject", PeerInfo{}, caller, "{}", absl::OkStatus());  // no log: nothing
  // Reopening appends.
  auto again = AuditLog::Open(path, "agent");
  ASSERT_TRUE(again.ok());
  Audit(again->get(), "Revert", PeerInfo{"fd:3", ""}, caller, "{\"id\":\"f1\"}", absl::OkStatus());

  const std::string text = Read(path);
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u) << text;
  std::vector<google::protobuf::Struct> parsed(3);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[i], &parsed[i]).ok()) << lines[i];
  }
  const auto& f0 = parsed[0].fields();
  EXPECT_EQ(f0.at("daemon").string_value(), "agent");
  EXPECT_EQ(f0.at("call").string_value(), "Inject");
  EXPECT_EQ(f0.at("who").string_value(), "spiffe://faultline/operator/alice");
  EXPECT_EQ(f0.at("peer").string_value(), "ipv4:10.0.0.1:5");
  EXPECT_EQ(f0.at("result").string_value(), "ok");
  EXPECT_TRUE(f0.at("what").struct_value().fields().contains("spec"));
  EXPECT_THAT(f0.at("time").string_value(), ::testing::MatchesRegex("20[0-9-]+T[0-9:.]+Z"));
  const auto& f1 = parsed[1].fields();
  EXPECT_EQ(f1.at("who").string_value(), "unknown");
  EXPECT_EQ(f1.at("result").string_value(), "error");
  EXPECT_EQ(f1.at("code").string_value(), "PERMISSION_DENIED");
  EXPECT_EQ(f1.at("error").string_value(), "Inject: needs\noperator");
  EXPECT_EQ(parsed[2].fields().at("call").string_value(), "Revert");
  EXPECT_EQ(text.find("BEGIN"), std::string::npos) << "certificate material in the audit log";

  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_FALSE(AuditLog::Open(dir.path(), "agent").ok());  // a folder
}

// A FIFO or a folder as --audit-log is refused at once, naming the flag: the
// open is non-blocking, so a FIFO with no reader cannot hang the daemon.
TEST(AuditLog, RefusesFifoAndFolderWithoutBlocking) {
  TempDir dir("audit-fifo");
  const std::string fifo = dir.Path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto no_reader = AuditLog::Open(fifo, "agent");
  ASSERT_FALSE(no_reader.ok());
  EXPECT_THAT(std::string(no_reader.status().message()), HasSubstr("--audit-log"));
  EXPECT_THAT(std::string(no_reader.status().message()), HasSubstr("not a regular file"));
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  auto with_reader = AuditLog::Open(fifo, "agent");
  ::close(reader);
  ASSERT_FALSE(with_reader.ok());
  EXPECT_THAT(std::string(with_reader.status().message()), HasSubstr("--audit-log"));
  auto folder = AuditLog::Open(dir.path(), "agent");
  ASSERT_FALSE(folder.ok());
  EXPECT_THAT(std::string(folder.status().message()), HasSubstr("--audit-log"));
}

}  // namespace
}  // namespace faultline::auth
