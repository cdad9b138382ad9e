package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
)

// PushModule stores a wasm module under name (kyb://name), replacing one
// of that name, through kyb.api.v1.modules.push: it opens an upload, sends
// the bytes in chunks (each acknowledged) and returns what the server
// stored. The server checks the digest; a failed or abandoned upload
// stores nothing.
func (c *Client) PushModule(ctx context.Context, name string, data []byte) (*api.ModuleInfo, error) {
	sum := sha256.Sum256(data)
	var up api.ModuleUpload
	if err := c.call(ctx, api.SubjectModulesPush, api.ModulePushRequest{
		Name: name, Size: int64(len(data)), Digest: "sha256:" + hex.EncodeToString(sum[:]),
	}, &up); err != nil {
		return nil, err
	}
	if up.ChunkSize <= 0 || up.Subject == "" {
		return nil, fmt.Errorf("module push %s: the server gave no upload subject", name)
	}
	var last []byte
	for off := 0; off < len(data); off += up.ChunkSize {
		chunk := data[off:min(off+up.ChunkSize, len(data))]
		b, err := c.requestMsg(ctx, &nats.Msg{Subject: up.Subject, Data: chunk,
			Header: nats.Header{api.StreamSeqHeader: []string{strconv.Itoa(off)}}})
		if err != nil {
			return nil, fmt.Errorf("module push %s: chunk at %d: %w", name, off, err)
		}
		last = b
	}
	var info api.ModuleInfo
	if err := json.Unmarshal(last, &info); err != nil {
		return nil, fmt.Errorf("module push %s: decode reply: %w", name, err)
	}
	return &info, nil
}

// ListModules returns every module in the cluster, sorted by name.
func (c *Client) ListModules(ctx context.Context) ([]api.ModuleInfo, error) {
	var l api.ModuleList
	if err := c.call(ctx, api.SubjectModulesList, struct{}{}, &l); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// GetModule returns one module's info; a missing one is a NotFound
// *api.Status.
func (c *Client) GetModule(ctx context.Context, name string) (*api.ModuleInfo, error) {
	var info api.ModuleInfo
	if err := c.call(ctx, api.SubjectModulesGet, api.ModuleRequest{Name: name}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}
