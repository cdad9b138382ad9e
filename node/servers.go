package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/nats-io/nats.go"
)

// ServersFile is the file, in the agent's data dir, that keeps the client
// URLs of every control plane server the agent has learned of (from its
// join, and from the cluster's advertised connect URLs), so a restarted
// agent reaches the control plane while any server is up.
const ServersFile = "servers.json"

// maxServers bounds the kept list (a cluster has a handful of servers).
const maxServers = 32

// LoadServers returns the server URLs kept in dir (none when there is no file).
func LoadServers(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, ServersFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read control plane servers: %w", err)
	}
	var urls []string
	if err := json.Unmarshal(b, &urls); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ServersFile), err)
	}
	return urls, nil
}

// SaveServers keeps urls (sorted, de-duplicated, at most 32) in dir.
func SaveServers(dir string, urls []string) error {
	urls = slices.Clone(urls)
	slices.Sort(urls)
	urls = slices.Compact(urls)
	urls = slices.DeleteFunc(urls, func(u string) bool { return u == "" || len(u) > 512 })
	if len(urls) > maxServers {
		urls = urls[:maxServers]
	}
	b, _ := json.Marshal(urls)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keep control plane servers: %w", err)
	}
	tmp := filepath.Join(dir, ServersFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("keep control plane servers: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ServersFile)); err != nil {
		return fmt.Errorf("keep control plane servers: %w", err)
	}
	return nil
}

// TrackServers keeps dir's server list up to date with every server nc
// knows: now, and whenever the cluster advertises a new one.
func TrackServers(nc *nats.Conn, dir string, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	save := func(c *nats.Conn) {
		if err := SaveServers(dir, c.Servers()); err != nil {
			log.Warn("keep control plane servers", "err", err)
		}
	}
	nc.SetDiscoveredServersHandler(save)
	save(nc)
}
