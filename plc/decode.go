package plc

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// DecodeConfig decodes a PLC profile from YAML (the `plc:` section of a
// line config, or a file of its own), rejecting unknown keys, and
// validates it. Bad input gets an error naming the key or signal; it never
// panics.
func DecodeConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, errors.New("plc: empty config")
		}
		return Config{}, fmt.Errorf("plc: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
