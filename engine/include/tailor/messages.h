/*
 * Tailor wire protocol constants (JSON over ZeroMQ). The full schema, with
 * examples, is in docs/protocol.md; the validator is engine/src/service/protocol.cc.
 */
#ifndef TAILOR_MESSAGES_H
#define TAILOR_MESSAGES_H

/* Every message carries "v": the schema version. Within a version the
 * protocol only grows (docs/protocol.md, Versions and compatibility); the
 * minor counts those additions and `health` reports both. */
#define TAILOR_SCHEMA_VERSION 1
#define TAILOR_SCHEMA_MINOR 0

/* Request types on the ROUTER socket. */
#define TAILOR_MSG_DECIDE "decide"
#define TAILOR_MSG_EVENT "event"
#define TAILOR_MSG_EVENTS "events" /* a batch, acknowledged once all are stored */
#define TAILOR_MSG_PROFILE_GET "profile.get"
#define TAILOR_MSG_PROFILE_DELETE "profile.delete" /* erasure: admin only */
#define TAILOR_MSG_HEALTH "health"
#define TAILOR_MSG_STATS "stats"
#define TAILOR_MSG_EXPLAIN "explain"
#define TAILOR_MSG_RULES_RELOAD "rules.reload"
#define TAILOR_MSG_OUTBOUND_ACK "outbound.ack"         /* a consumer confirms outbound ids */
#define TAILOR_MSG_OUTBOUND_PENDING "outbound.pending" /* the outbound messages not confirmed */

/* Error codes in {"error":{"code":..,"field":..,"message":..}}. */
#define TAILOR_ERR_BAD_REQUEST "bad_request"                 /* malformed or invalid field */
#define TAILOR_ERR_TOO_LARGE "too_large"                     /* over max_message_bytes */
#define TAILOR_ERR_UNKNOWN_TYPE "unknown_type"               /* "type" names no message */
#define TAILOR_ERR_UNSUPPORTED_VERSION "unsupported_version" /* "v" is not 1 */
#define TAILOR_ERR_INTERNAL "internal"                       /* our fault; retry later */
#define TAILOR_ERR_UNAVAILABLE "unavailable"     /* shutting down, or events queue full; retry */
#define TAILOR_ERR_NOT_FOUND "not_found"         /* e.g. unknown decision id */
#define TAILOR_ERR_RELOAD_FAILED "reload_failed" /* old set keeps serving */
#define TAILOR_ERR_OVERLOADED "overloaded"       /* every worker has a backlog; retry shortly */
#define TAILOR_ERR_FORBIDDEN "forbidden"         /* the client key's roles do not allow it */

#endif /* TAILOR_MESSAGES_H */
