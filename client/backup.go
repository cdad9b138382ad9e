package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
)

// Backup writes a backup of the whole store (kyb.api.v1.backup) to w and
// returns its size: the server takes it once, at one point in time, and
// streams it in windows that are resumed from their offsets. A caller that
// may not back up gets a Forbidden *api.Status.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var written int64
	next := func(resume string) ([]byte, error) {
		return json.Marshal(api.BackupRequest{Resume: resume})
	}
	err := Stream(ctx, c.nc, c.streamIdle, api.SubjectBackup, nil, next, func(m *nats.Msg) error {
		off, err := strconv.ParseInt(m.Header.Get(api.StreamSeqHeader), 10, 64)
		if err != nil || off != written {
			return fmt.Errorf("backup: chunk at offset %q after %d bytes: the stream lost data", m.Header.Get(api.StreamSeqHeader), written)
		}
		n, err := w.Write(m.Data)
		written += int64(n)
		if err != nil {
			return fmt.Errorf("backup: write: %w", err)
		}
		return nil
	})
	return written, err
}
