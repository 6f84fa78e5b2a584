// What a consumed AMQP message means: how serve settles a message by its document's result, and
// how `route` splits documents and keys them for a consistent-hash exchange (docs/AMQP.md).
#pragma once

#include <cstdint>
#include <string>

#include "core/documents.h"
#include "transport/amqp.h"

namespace ds {

// serve: a document's result -> what to do with its message. Durable: ack; malformed or refused
// keys: dead-letter (retrying cannot help), with DocumentResult::Reason as the reason; retry:
// requeue.
AmqpVerdict VerdictFor(const DocumentResult& result);

// The routing key of an object for the consistent-hash exchange: 32 hex digits of
// SHA-256(bucket "/" key). Fixed length (AMQP routing keys are at most 255 bytes; S3 keys are
// up to 1024) and free of the key's text.
std::string PartitionKey(const std::string& bucket, const std::string& key);

// route: validates one document, splits a "Records" document into one document per record,
// and publishes each (publisher-confirmed, mandatory) to `exchange` with its PartitionKey.
// Malformed -> dead-letter; a publish failure -> retry (records already published may be
// published again: events are idempotent).
AmqpVerdict RouteDocument(AmqpChannel& out, const std::string& exchange, const std::string& body,
                          uint64_t* published);

}  // namespace ds
