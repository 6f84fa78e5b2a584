// S3 wire formats without network: XML parsing and building, URL encoding, error mapping.
#include <gtest/gtest.h>

#include <pugixml.hpp>

#include "s3/client.h"
#include "s3/xml.h"

namespace ds::s3 {
namespace {

// ---- URL encoding -------------------------------------------------------------------------

TEST(S3UriEncodeTest, PathKeepsSlashAndUnreservedOnly) {
  EXPECT_EQ(UriEncode("plain/Key-1._~", true), "plain/Key-1._~");
  EXPECT_EQ(UriEncode("a b+c%d?e#f&g=h", true), "a%20b%2Bc%25d%3Fe%23f%26g%3Dh");
  EXPECT_EQ(UriEncode("caf\xC3\xA9/\xE2\x9C\x93", true), "caf%C3%A9/%E2%9C%93");
  EXPECT_EQ(UriEncode(" lead/trail ", true), "%20lead/trail%20");
  EXPECT_EQ(UriEncode("a/../b//c", true), "a/../b//c");
  EXPECT_EQ(UriEncode("semi;colon:at@dollar$comma,star*paren()", true),
            "semi%3Bcolon%3Aat%40dollar%24comma%2Cstar%2Aparen%28%29");
  EXPECT_EQ(UriEncode(std::string("nul\0tab\t", 8), true), "nul%00tab%09");
}

TEST(S3UriEncodeTest, QueryValuesEncodeSlashToo) {
  EXPECT_EQ(UriEncode("a/b c", false), "a%2Fb%20c");
  EXPECT_EQ(UriEncode("tok+en==", false), "tok%2Ben%3D%3D");
}

TEST(S3UriDecodeTest, RoundTripsAndHandlesPlus) {
  const std::string key = " odd key+with%all?the#chars&=\xC3\xA9/x ";
  Result<std::string> back = UriDecode(UriEncode(key, true), false);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, key);
  // S3's encoding-type=url writes a space as '+' and a real '+' as %2B.
  EXPECT_EQ(*UriDecode("a+b%2Bc", true), "a b+c");
  EXPECT_EQ(*UriDecode("a+b%2Bc", false), "a+b+c");
  EXPECT_EQ(*UriDecode("%e2%9c%93", true), "\xE2\x9C\x93");
}

TEST(S3UriDecodeTest, RejectsBrokenEscapes) {
  EXPECT_EQ(UriDecode("abc%", true).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(UriDecode("abc%4", true).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(UriDecode("abc%zz", true).status().code(), Code::kInvalidArgument);
}

TEST(S3BuildQueryTest, SortedEncodedAndValuelessParamsGetEquals) {
  EXPECT_EQ(BuildQuery({{"prefix", "photos/2024 june"},
                        {"list-type", "2"},
                        {"continuation-token", "1a+B/c=="},
                        {"encoding-type", "url"}}),
            "continuation-token=1a%2BB%2Fc%3D%3D&encoding-type=url&list-type=2&"
            "prefix=photos%2F2024%20june");
  EXPECT_EQ(BuildQuery({{"delete", ""}}), "delete=");
  EXPECT_EQ(BuildQuery({{"versions", ""}, {"key-marker", "k&v"}, {"encoding-type", "url"}}),
            "encoding-type=url&key-marker=k%26v&versions=");
  EXPECT_EQ(BuildQuery({}), "");
}

// ---- ListObjectsV2 ------------------------------------------------------------------------

constexpr char kEncodedTruncatedPage[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>media-archive</Name>
  <Prefix>2024%2F</Prefix>
  <KeyCount>4</KeyCount>
  <MaxKeys>4</MaxKeys>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <ContinuationToken>previous-token</ContinuationToken>
  <NextContinuationToken>Zm9v+YmFy/YmF6==</NextContinuationToken>
  <Contents>
    <Key>2024/beach+day%2B1.jpg</Key>
    <LastModified>2024-06-01T10:00:00.000Z</LastModified>
    <ETag>&quot;0f343b0931126a20f133d67c2b018a3b&quot;</ETag>
    <Size>1048576</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>2024/caf%C3%A9%20%26%20bar%3F.txt</Key>
    <LastModified>2024-06-02T11:30:00.000Z</LastModified>
    <ETag>"5d41402abc4b2a76b9719d911017c592-3"</ETag>
    <Size>17</Size>
  </Contents>
  <Contents>
    <Key>2024/100%25%23done%0A</Key>
    <LastModified>2024-06-03T00:00:00.000Z</LastModified>
    <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag>
    <Size>0</Size>
  </Contents>
  <Contents>
    <Key>2024/+</Key>
    <LastModified>2024-06-04T00:00:00.000Z</LastModified>
    <ETag>&quot;abc&quot;</ETag>
    <Size>3</Size>
  </Contents>
</ListBucketResult>)";

TEST(S3ListObjectsV2Test, TruncatedUrlEncodedPage) {
  Result<ListObjectsPage> page = ParseListObjectsV2(kEncodedTruncatedPage);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->truncated);
  EXPECT_TRUE(page->url_encoded);
  EXPECT_EQ(page->next_continuation_token, "Zm9v+YmFy/YmF6==");  // tokens are never encoded
  ASSERT_EQ(page->objects.size(), 4u);
  EXPECT_EQ(page->objects[0].key, "2024/beach day+1.jpg");
  EXPECT_EQ(page->objects[0].size, 1048576u);
  EXPECT_EQ(page->objects[0].etag, "0f343b0931126a20f133d67c2b018a3b");
  EXPECT_EQ(page->objects[0].last_modified, "2024-06-01T10:00:00.000Z");
  EXPECT_EQ(page->objects[1].key, "2024/caf\xC3\xA9 & bar?.txt");
  EXPECT_EQ(page->objects[1].etag, "5d41402abc4b2a76b9719d911017c592-3");
  EXPECT_EQ(page->objects[2].key, "2024/100%#done\n");
  EXPECT_EQ(page->objects[2].size, 0u);
  EXPECT_EQ(page->objects[3].key, "2024/ ");
  EXPECT_TRUE(page->objects[0].version_id.empty());
}

TEST(S3ListObjectsV2Test, LastPageWithoutEncodingKeepsKeysVerbatim) {
  constexpr char kXml[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix></Prefix><KeyCount>4</KeyCount><MaxKeys>1000</MaxKeys>
  <IsTruncated>false</IsTruncated>
  <Contents><Key>Tom &amp; Jerry &lt;1&gt; "q" 'a'.txt</Key><Size>5</Size><ETag>"x"</ETag></Contents>
  <Contents><Key> </Key><Size>1</Size></Contents>
  <Contents><Key>  two lead</Key><Size>2</Size></Contents>
  <Contents><Key>a+b%20c</Key><Size>3</Size></Contents>
</ListBucketResult>)";
  Result<ListObjectsPage> page = ParseListObjectsV2(kXml);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_FALSE(page->truncated);
  EXPECT_FALSE(page->url_encoded);
  EXPECT_TRUE(page->next_continuation_token.empty());
  ASSERT_EQ(page->objects.size(), 4u);
  EXPECT_EQ(page->objects[0].key, "Tom & Jerry <1> \"q\" 'a'.txt");
  EXPECT_EQ(page->objects[1].key, " ");  // whitespace-only key survives
  EXPECT_EQ(page->objects[2].key, "  two lead");
  EXPECT_EQ(page->objects[3].key, "a+b%20c");  // not decoded: the store did not encode
}

TEST(S3ListObjectsV2Test, EmptyBucketAndGarbage) {
  Result<ListObjectsPage> empty = ParseListObjectsV2(
      R"(<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>
         </ListBucketResult>)");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->objects.empty());

  EXPECT_FALSE(ParseListObjectsV2("<html><body>Bad gateway</body></html>").ok());
  EXPECT_FALSE(ParseListObjectsV2("<ListBucketResult><Contents>").ok());
  Result<ListObjectsPage> bad_escape = ParseListObjectsV2(
      "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%G1</Key></Contents>"
      "</ListBucketResult>");
  EXPECT_FALSE(bad_escape.ok());
}

// ---- ListObjectVersions -------------------------------------------------------------------

TEST(S3ListObjectVersionsTest, VersionsAndDeleteMarkersInOrder) {
  constexpr char kXml[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>versioned</Name>
  <Prefix>docs%2F</Prefix>
  <KeyMarker></KeyMarker>
  <VersionIdMarker></VersionIdMarker>
  <NextKeyMarker>docs%2Fz+z</NextKeyMarker>
  <NextVersionIdMarker>v-77</NextVersionIdMarker>
  <MaxKeys>3</MaxKeys>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <DeleteMarker>
    <Key>docs%2Fa%20b.txt</Key><VersionId>dm-3</VersionId><IsLatest>true</IsLatest>
    <LastModified>2024-07-03T00:00:00.000Z</LastModified>
  </DeleteMarker>
  <Version>
    <Key>docs%2Fa%20b.txt</Key><VersionId>v-2</VersionId><IsLatest>false</IsLatest>
    <LastModified>2024-07-02T00:00:00.000Z</LastModified>
    <ETag>&quot;aaaa&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass>
  </Version>
  <Version>
    <Key>docs%2Fc</Key><VersionId>null</VersionId><IsLatest>true</IsLatest>
    <ETag>&quot;bbbb&quot;</ETag><Size>7</Size>
  </Version>
</ListVersionsResult>)";
  Result<ListVersionsPage> page = ParseListObjectVersions(kXml);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_key_marker, "docs/z z");
  EXPECT_EQ(page->next_version_id_marker, "v-77");
  ASSERT_EQ(page->versions.size(), 3u);
  EXPECT_TRUE(page->versions[0].is_delete_marker);
  EXPECT_TRUE(page->versions[0].is_latest);
  EXPECT_EQ(page->versions[0].key, "docs/a b.txt");
  EXPECT_EQ(page->versions[0].version_id, "dm-3");
  EXPECT_EQ(page->versions[0].size, 0u);
  EXPECT_FALSE(page->versions[1].is_delete_marker);
  EXPECT_FALSE(page->versions[1].is_latest);
  EXPECT_EQ(page->versions[1].version_id, "v-2");
  EXPECT_EQ(page->versions[1].etag, "aaaa");
  EXPECT_EQ(page->versions[1].size, 12u);
  EXPECT_EQ(page->versions[2].key, "docs/c");
  EXPECT_EQ(page->versions[2].version_id, "null");
}

// ---- DeleteObjects ------------------------------------------------------------------------

TEST(S3DeleteResultTest, DeletedAndErrorEntries) {
  constexpr char kXml[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Deleted><Key>plain.txt</Key></Deleted>
  <Deleted>
    <Key>versioned &amp; odd.txt</Key><VersionId>3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY</VersionId>
  </Deleted>
  <Deleted>
    <Key>marked</Key><DeleteMarker>true</DeleteMarker>
    <DeleteMarkerVersionId>dm-1</DeleteMarkerVersionId>
  </Deleted>
  <Error>
    <Key>locked/report.pdf</Key><VersionId>v9</VersionId>
    <Code>AccessDenied</Code><Message>Access Denied</Message>
  </Error>
  <Error><Key>x</Key><Code>InternalError</Code><Message/></Error>
</DeleteResult>)";
  Result<std::vector<DeleteOutcome>> r = ParseDeleteResult(kXml);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_TRUE((*r)[0].deleted);
  EXPECT_EQ((*r)[0].id.key, "plain.txt");
  EXPECT_EQ((*r)[0].id.version_id, "");
  EXPECT_EQ((*r)[1].id.key, "versioned & odd.txt");
  EXPECT_EQ((*r)[1].id.version_id, "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
  EXPECT_TRUE((*r)[2].deleted);
  EXPECT_EQ((*r)[2].id.version_id, "");  // the marker's id is not the deleted version's
  EXPECT_FALSE((*r)[3].deleted);
  EXPECT_EQ((*r)[3].id.key, "locked/report.pdf");
  EXPECT_EQ((*r)[3].id.version_id, "v9");
  EXPECT_EQ((*r)[3].error_code, "AccessDenied");
  EXPECT_EQ((*r)[3].error_message, "Access Denied");
  EXPECT_EQ((*r)[4].error_code, "InternalError");
  EXPECT_EQ((*r)[4].error_message, "");
  EXPECT_FALSE(ParseDeleteResult("<Error><Code>AccessDenied</Code></Error>").ok());
}

TEST(S3DeleteRequestTest, EscapesAndRoundTrips) {
  const std::vector<ObjectId> ids = {
      {"a&b", ""},
      {"<tag>/x>y", "v1"},
      {"say \"hi\" it's", ""},
      {"caf\xC3\xA9/\xE6\x97\xA5\xE6\x9C\xAC.txt", "ver+/=="},
      {" spaced \t", ""},
      {"line\nbreak", ""},
  };
  const std::string body = BuildDeleteRequest(ids, /*quiet=*/false);
  EXPECT_NE(body.find("<Quiet>false</Quiet>"), std::string::npos) << body;
  EXPECT_NE(body.find("a&amp;b"), std::string::npos) << body;
  EXPECT_NE(body.find("&lt;tag&gt;/x&gt;y"), std::string::npos) << body;
  EXPECT_NE(body.find("caf\xC3\xA9/\xE6\x97\xA5"), std::string::npos) << body;  // raw UTF-8
  EXPECT_EQ(body.find("<Quiet>true"), std::string::npos);
  EXPECT_NE(body.find("xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""), std::string::npos);
  EXPECT_EQ(body.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0), 0u) << body;

  // Whatever the escaping, a conforming parser must read back exactly the keys.
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_buffer(body.data(), body.size(),
                              pugi::parse_default | pugi::parse_ws_pcdata_single));
  std::vector<ObjectId> back;
  for (pugi::xml_node o : doc.child("Delete").children("Object")) {
    back.push_back({o.child_value("Key"), o.child_value("VersionId")});
  }
  ASSERT_EQ(back.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(back[i].key, ids[i].key) << i;
    EXPECT_EQ(back[i].version_id, ids[i].version_id) << i;
  }
  EXPECT_EQ(body.find("<VersionId></VersionId>"), std::string::npos);  // omitted when empty

  EXPECT_NE(BuildDeleteRequest({{"k", ""}}, true).find("<Quiet>true</Quiet>"), std::string::npos);
}

TEST(S3DeleteRequestTest, XmlSafety) {
  EXPECT_TRUE(IsXmlSafe("normal/key with spaces & <stuff>"));
  EXPECT_TRUE(IsXmlSafe("tab\tand\nnewline"));
  EXPECT_TRUE(IsXmlSafe("caf\xC3\xA9"));
  EXPECT_FALSE(IsXmlSafe("carriage\rreturn"));
  EXPECT_FALSE(IsXmlSafe("bell\x07"));
  EXPECT_FALSE(IsXmlSafe(std::string("nul\0", 4)));
}

TEST(S3BodiesTest, VersioningAndBucketConfiguration) {
  std::string on = BuildVersioningConfiguration(true);
  EXPECT_NE(on.find("<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                    "<Status>Enabled</Status></VersioningConfiguration>"),
            std::string::npos)
      << on;
  EXPECT_NE(BuildVersioningConfiguration(false).find("<Status>Suspended</Status>"),
            std::string::npos);
  EXPECT_NE(BuildCreateBucketConfiguration("eu-west-3")
                .find("<LocationConstraint>eu-west-3</LocationConstraint>"),
            std::string::npos);
}

// ---- Errors -------------------------------------------------------------------------------

TEST(S3ErrorBodyTest, AwsStyle) {
  std::optional<ErrorBody> e = ParseErrorBody(R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>
<Key>missing/file.txt</Key><RequestId>4442587FB7D0A2F9</RequestId><HostId>abc=</HostId></Error>)");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "NoSuchKey");
  EXPECT_EQ(e->message, "The specified key does not exist.");
  EXPECT_EQ(e->request_id, "4442587FB7D0A2F9");
}

TEST(S3ErrorBodyTest, RgwStyleWithEmptyMessage) {
  std::optional<ErrorBody> e = ParseErrorBody(
      R"(<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message/>)"
      R"(<BucketName>gone</BucketName><RequestId>tx000001-0067-default</RequestId>)"
      R"(<HostId>7f1e-default-default</HostId></Error>)");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "NoSuchBucket");
  EXPECT_EQ(e->message, "");
  EXPECT_EQ(e->request_id, "tx000001-0067-default");
}

TEST(S3ErrorBodyTest, NotAnErrorDocument) {
  EXPECT_FALSE(ParseErrorBody("").has_value());
  EXPECT_FALSE(ParseErrorBody("<html><h1>502 Bad Gateway</h1></html>").has_value());
  EXPECT_FALSE(ParseErrorBody("upstream connect error").has_value());
}

TEST(S3ErrorMappingTest, NotFoundFlavours) {
  RequestTarget get{"GET", "photos", "2024/a b.jpg", ""};
  Status s = HttpErrorToStatus(get, 404, {"NoSuchKey", "The specified key does not exist.", ""}, 1);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "s3://photos/2024/a b.jpg: not found");

  s = HttpErrorToStatus(get, 404, {"NoSuchBucket", "", ""}, 1);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "bucket 'photos' does not exist (NoSuchBucket)");

  // HEAD has no body: a bare 404 on a key is "not found".
  s = HttpErrorToStatus({"HEAD", "photos", "k", "v1"}, 404, {}, 1);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "s3://photos/k (version v1): not found");

  s = HttpErrorToStatus({"GET", "photos", "k", "v1"}, 404, {"NoSuchVersion", "x", ""}, 1);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "s3://photos/k (version v1): not found (NoSuchVersion)");
}

TEST(S3ErrorMappingTest, DeniedKeepsTheS3Code) {
  for (const char* code : {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"}) {
    Status s = HttpErrorToStatus({"GET", "b", "k", ""}, 403, {code, "", ""}, 1);
    EXPECT_EQ(s.code(), Code::kPermissionDenied);
    EXPECT_NE(s.message().find(code), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("s3://b/k"), std::string::npos) << s.message();
  }
  Status head = HttpErrorToStatus({"HEAD", "b", "k", ""}, 403, {}, 1);
  EXPECT_EQ(head.code(), Code::kPermissionDenied);
  EXPECT_EQ(head.message(), "HEAD s3://b/k: access denied (HTTP 403)");
  Status with_message =
      HttpErrorToStatus({"GET", "b", "", ""}, 403, {"AccessDenied", "Access Denied", ""}, 1);
  EXPECT_EQ(with_message.message(),
            "GET s3://b: access denied (HTTP 403 AccessDenied: Access Denied)");
}

TEST(S3ErrorMappingTest, RetryableAndOthers) {
  EXPECT_TRUE(IsRetryableHttp(500, ""));
  EXPECT_TRUE(IsRetryableHttp(503, "SlowDown"));
  EXPECT_TRUE(IsRetryableHttp(429, ""));
  EXPECT_TRUE(IsRetryableHttp(400, "RequestTimeout"));
  EXPECT_FALSE(IsRetryableHttp(400, "InvalidArgument"));
  EXPECT_FALSE(IsRetryableHttp(403, "AccessDenied"));
  EXPECT_FALSE(IsRetryableHttp(404, "NoSuchKey"));

  Status s = HttpErrorToStatus({"GET", "b", "k", ""}, 503, {"SlowDown", "Please reduce", ""}, 5);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(s.message(), "GET s3://b/k: HTTP 503 SlowDown: Please reduce (after 5 attempts)");

  s = HttpErrorToStatus({"DELETE", "b", "", ""}, 409, {"BucketNotEmpty", "", ""}, 1);
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.message(), "DELETE s3://b: HTTP 409 BucketNotEmpty");

  s = HttpErrorToStatus({"GET", "b", "k", "zzz"}, 400, {"InvalidArgument", "Invalid version", ""},
                        1);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
}

// Ceph RGW 16.2's ListTopics answer (captured from the lab): the topic's endpoint, persistence
// and the attributes it was created with; setup-notifications compares them with the wanted ones.
TEST(S3ListTopicsTest, RgwAnswerGivesEndpointPersistenceAndAttributes) {
  const std::string xml =
      R"(<ListTopicsResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/"><ListTopicsResult>)"
      R"(<Topics><member><User></User><Name>t9</Name><EndPoint><EndpointAddress>)"
      R"(http://127.0.0.1:9/?token=abc</EndpointAddress><EndpointArgs>Attributes.entry.1.key=)"
      R"(push-endpoint&amp;Attributes.entry.1.value=http://127.0.0.1:9/?token=abc&amp;)"
      R"(Attributes.entry.2.key=persistent&amp;Attributes.entry.2.value=false&amp;Version=)"
      R"(2010-03-31&amp;amqp-exchange=ex&amp;persistent=false&amp;push-endpoint=)"
      R"(http://127.0.0.1:9/?token=abc</EndpointArgs><EndpointTopic>t9</EndpointTopic>)"
      R"(<HasStoredSecret>False</HasStoredSecret><Persistent>True</Persistent></EndPoint>)"
      R"(<TopicArn>arn:aws:sns:default::t9</TopicArn><OpaqueData></OpaqueData></member></Topics>)"
      R"(</ListTopicsResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata>)"
      R"(</ListTopicsResponse>)";
  std::string next = "stale";
  Result<std::vector<TopicInfo>> topics = ParseListTopics(xml, &next);
  ASSERT_TRUE(topics.ok()) << topics.status().ToString();
  ASSERT_EQ(topics->size(), 1u);
  const TopicInfo& t = (*topics)[0];
  EXPECT_EQ(t.name, "t9");
  EXPECT_EQ(t.arn, "arn:aws:sns:default::t9");
  EXPECT_EQ(t.push_endpoint, "http://127.0.0.1:9/?token=abc");
  EXPECT_TRUE(t.persistent);
  EXPECT_EQ(t.args.at("amqp-exchange"), "ex");
  EXPECT_EQ(t.args.at("push-endpoint"), "http://127.0.0.1:9/?token=abc");
  EXPECT_EQ(next, "");
}

// AWS SNS answers with ARNs only, in pages.
TEST(S3ListTopicsTest, AwsAnswerGivesNamesFromArnsAndTheNextToken) {
  const std::string xml =
      R"(<ListTopicsResponse><ListTopicsResult><Topics><member><TopicArn>)"
      R"(arn:aws:sns:us-east-1:123456789012:alpha</TopicArn></member></Topics><NextToken>tok)"
      R"(</NextToken></ListTopicsResult></ListTopicsResponse>)";
  std::string next;
  Result<std::vector<TopicInfo>> topics = ParseListTopics(xml, &next);
  ASSERT_TRUE(topics.ok());
  ASSERT_EQ(topics->size(), 1u);
  EXPECT_EQ((*topics)[0].name, "alpha");
  EXPECT_EQ((*topics)[0].push_endpoint, "");
  EXPECT_EQ(next, "tok");
  EXPECT_FALSE(ParseListTopics("<nope/>", &next).ok());
}

}  // namespace
}  // namespace ds::s3
