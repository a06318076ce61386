// Package render draws a trace code in its rule's carrier — GS1 DataMatrix,
// GS1-128, Code 128, Data Matrix or QR — as an image or PNG with a quiet
// zone, using github.com/boombuler/barcode. It imports only tracecode; the
// printer drivers and linectl use it. No barcode library type appears in
// its API.
package render

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"strings"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/code128"
	"github.com/boombuler/barcode/datamatrix"
	"github.com/boombuler/barcode/qr"

	"github.com/tracline/tracline/tracecode"
)

// Options size the image. Zero values take the defaults.
type Options struct {
	Module    int // pixels per module (narrowest bar); default 4 for 2D, 2 for 1D
	QuietZone int // quiet zone in modules; default 2 (Data Matrix), 4 (QR), 10 (Code 128)
	BarHeight int // 1D symbols: bar height in pixels; default 80
}

// Payload is the data encoded in the symbol for a code in carrier c:
//   - gs1-datamatrix: byte 0xE8 (FNC1) + GS1 element string, fixed-length AIs
//     first, GS (0x1D) after each variable-length element that is not last
//   - gs1-128: FNC1 + the same element string with FNC1 as separator
//   - qr: a GS1 Digital Link URI on dlBase for GS1 codes, the 20 digits for nmpa20
//   - code128, datamatrix: the 20 digits of an nmpa20 code
func Payload(p *tracecode.Parsed, c tracecode.Carrier, dlBase string) (string, error) {
	gs1 := p.Scheme == tracecode.SchemeGS1SGTIN || p.Scheme == tracecode.SchemeGS1SSCC
	switch c {
	case tracecode.CarrierGS1DataMatrix:
		if !gs1 {
			return "", fmt.Errorf("carrier %s needs a GS1 code, %s is %s", c, p.Code, p.Scheme)
		}
		// The FNC1 codeword as the one byte 0xE8, never the rune U+00E8
		// (which Go would encode as the two bytes C3 A8).
		return string([]byte{datamatrix.FNC1}) + p.GS1Data(), nil
	case tracecode.CarrierGS1128:
		if !gs1 {
			return "", fmt.Errorf("carrier %s needs a GS1 code, %s is %s", c, p.Code, p.Scheme)
		}
		return string(code128.FNC1) + strings.ReplaceAll(p.GS1Data(), "\x1d", string(code128.FNC1)), nil
	case tracecode.CarrierQR:
		if gs1 {
			if dlBase == "" {
				dlBase = "https://id.gs1.org"
			}
			return p.DigitalLink(dlBase), nil
		}
		return string(p.Code), nil
	case tracecode.CarrierCode128, tracecode.CarrierDataMatrix:
		if p.Scheme != tracecode.SchemeNMPA20 {
			return "", fmt.Errorf("carrier %s is for nmpa20 codes; a %s code needs a GS1 carrier", c, p.Scheme)
		}
		return string(p.Code), nil
	}
	return "", fmt.Errorf("unknown carrier %q", string(c))
}

// Image draws p in rule r's carrier, with a white quiet zone around it.
func Image(p *tracecode.Parsed, r tracecode.Rule, opt Options) (image.Image, error) {
	payload, err := Payload(p, r.Carrier, r.DigitalLinkBase)
	if err != nil {
		return nil, err
	}
	var bc barcode.Barcode
	oneD := false
	switch r.Carrier {
	case tracecode.CarrierGS1DataMatrix, tracecode.CarrierDataMatrix:
		bc, err = datamatrix.Encode(payload)
	case tracecode.CarrierGS1128, tracecode.CarrierCode128:
		bc, err = code128.Encode(payload)
		oneD = true
	case tracecode.CarrierQR:
		bc, err = qr.Encode(payload, qr.M, qr.Auto)
	default:
		err = fmt.Errorf("unknown carrier %q", string(r.Carrier))
	}
	if err != nil {
		return nil, fmt.Errorf("render %s as %s: %w", p.Code, r.Carrier, err)
	}
	if bc == nil {
		return nil, errors.New("render: encoder returned nothing")
	}
	mod, quiet, height := opt.Module, opt.QuietZone, opt.BarHeight
	b := bc.Bounds()
	if oneD {
		if mod <= 0 {
			mod = 2
		}
		if quiet <= 0 {
			quiet = 10
		}
		if height <= 0 {
			height = 80
		}
	} else {
		if mod <= 0 {
			mod = 4
		}
		if quiet <= 0 {
			quiet = 2
			if r.Carrier == tracecode.CarrierQR {
				quiet = 4
			}
		}
		height = b.Dy() * mod
	}
	if mod > 64 || quiet > 64 || height > 4096 {
		return nil, fmt.Errorf("render: options out of range (module %d, quiet zone %d, bar height %d)", mod, quiet, height)
	}
	scaled, err := barcode.Scale(bc, b.Dx()*mod, height)
	if err != nil {
		return nil, fmt.Errorf("render %s: scale: %w", p.Code, err)
	}
	q := quiet * mod
	out := image.NewGray(image.Rect(0, 0, b.Dx()*mod+2*q, height+2*q))
	draw.Draw(out, out.Bounds(), &image.Uniform{C: color.White}, image.Point{}, draw.Src)
	draw.Draw(out, image.Rect(q, q, q+b.Dx()*mod, q+height), scaled, scaled.Bounds().Min, draw.Src)
	return out, nil
}

// PNG writes p in rule r's carrier as a PNG.
func PNG(w io.Writer, p *tracecode.Parsed, r tracecode.Rule, opt Options) error {
	img, err := Image(p, r, opt)
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("render %s: png: %w", p.Code, err)
	}
	return nil
}
