package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is one message in WECHAT_DLQ.
type DeadLetter struct {
	// ID is its sequence in WECHAT_DLQ, the handle for replay.
	ID          uint64    `json:"id"`
	EventID     string    `json:"event_id"`
	Subject     string    `json:"subject"` // the original subject on WECHAT
	Reason      string    `json:"reason"`
	Attempts    int       `json:"attempts"`
	FirstFailed time.Time `json:"first_failed_at"`
	DeadAt      time.Time `json:"dead_at"`
}

// ErrNoSuchDeadLetter is returned for a DLQ id that is not (or no longer)
// there.
var ErrNoSuchDeadLetter = errors.New("no such dead letter")

// DeadLetters lists WECHAT_DLQ, oldest first, at most limit entries (0: all).
func (b *Bus) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error) {
	st, err := b.js.Stream(ctx, DLQStreamName)
	if err != nil {
		return nil, fmt.Errorf("events: dlq: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("events: dlq info: %w", err)
	}
	var out []DeadLetter
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		if limit > 0 && len(out) >= limit {
			break
		}
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed or deleted
		}
		if err != nil {
			return nil, fmt.Errorf("events: dlq get %d: %w", seq, err)
		}
		out = append(out, deadLetterOf(m))
	}
	return out, nil
}

func deadLetterOf(m *jetstream.RawStreamMsg) DeadLetter {
	d := DeadLetter{
		ID:      m.Sequence,
		Subject: strings.TrimPrefix(m.Subject, DLQPrefix),
		Reason:  m.Header.Get(HeaderDLQReason),
		DeadAt:  m.Time.UTC(),
	}
	d.Attempts, _ = strconv.Atoi(m.Header.Get(HeaderDLQAttempts))
	d.FirstFailed, _ = time.Parse(time.RFC3339, m.Header.Get(HeaderDLQFirstFailed))
	var e struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(m.Data, &e) == nil {
		d.EventID = e.ID
	}
	return d
}

// Replay publishes dead letter id back onto its WECHAT subject (as a new
// message, so the dedupe window does not swallow it) and then deletes it
// from WECHAT_DLQ. The workers are idempotent on the event id, so a replay
// of something already done records nothing twice.
func (b *Bus) Replay(ctx context.Context, id uint64) (DeadLetter, error) {
	st, err := b.js.Stream(ctx, DLQStreamName)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("events: dlq: %w", err)
	}
	m, err := st.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("events: replay %d: %w", id, ErrNoSuchDeadLetter)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("events: replay %d: %w", id, err)
	}
	d := deadLetterOf(m)
	out := &nats.Msg{Subject: d.Subject, Data: m.Data, Header: nats.Header{}}
	for k, v := range m.Header {
		if !strings.HasPrefix(k, "Wxscan-Dlq-") && k != jetstream.MsgIDHeader {
			out.Header[k] = v
		}
	}
	out.Header.Set(jetstream.MsgIDHeader, "replay-"+strconv.FormatUint(id, 10))
	if _, err := b.js.PublishMsg(ctx, out); err != nil {
		return d, fmt.Errorf("events: replay %d: publish: %w", id, err)
	}
	if err := st.DeleteMsg(ctx, id); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return d, fmt.Errorf("events: replay %d: delete from dlq: %w", id, err)
	}
	return d, nil
}

// StreamStatus is the operator's quick view of the streams and consumer.
type StreamStatus struct {
	StreamMsgs    uint64    `json:"stream_msgs"`
	StreamBytes   uint64    `json:"stream_bytes"`
	DLQMsgs       uint64    `json:"dlq_msgs"`
	Consumer      string    `json:"consumer,omitempty"`
	Pending       uint64    `json:"consumer_pending"`     // not yet delivered (lag)
	AckPending    int       `json:"consumer_ack_pending"` // delivered, not yet acked
	Redelivered   int       `json:"consumer_redelivered"`
	LastDelivered time.Time `json:"consumer_last_active,omitempty"`
}

// Status reads the streams' depth and the durable consumer's lag.
func (b *Bus) Status(ctx context.Context, durable string) (StreamStatus, error) {
	var s StreamStatus
	st, err := b.js.Stream(ctx, StreamName)
	if err != nil {
		return s, fmt.Errorf("events: status: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return s, fmt.Errorf("events: status: %w", err)
	}
	s.StreamMsgs, s.StreamBytes = info.State.Msgs, info.State.Bytes
	dlq, err := b.js.Stream(ctx, DLQStreamName)
	if err != nil {
		return s, fmt.Errorf("events: status: %w", err)
	}
	dinfo, err := dlq.Info(ctx)
	if err != nil {
		return s, fmt.Errorf("events: status: %w", err)
	}
	s.DLQMsgs = dinfo.State.Msgs
	if durable == "" {
		return s, nil
	}
	c, err := st.Consumer(ctx, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("events: status consumer %s: %w", durable, err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return s, fmt.Errorf("events: status consumer %s: %w", durable, err)
	}
	s.Consumer, s.Pending, s.AckPending, s.Redelivered = durable, ci.NumPending, ci.NumAckPending, ci.NumRedelivered
	if ci.Delivered.Last != nil {
		s.LastDelivered = ci.Delivered.Last.UTC()
	}
	return s, nil
}
