package reports

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/snapeval/snapeval/eval"
)

// WriteRecordsJSONL writes records one JSON object per line, with every field of eval.Record under its JSON name
// (bench, item_id, policy, sample, output, extracted, correct, error, ...). HTML characters are not escaped.
func WriteRecordsJSONL(w io.Writer, recs []eval.Record) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i, r := range recs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("record %d (%s/%s/%s/%d): %w", i, r.Bench, r.ItemID, r.Policy, r.Sample, err)
		}
	}
	return nil
}

// RecordColumns are the CSV columns of WriteRecordsCSV: the JSON names of eval.Record's fields, in field order.
func RecordColumns() []string {
	t := reflect.TypeFor[eval.Record]()
	cols := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		cols = append(cols, jsonName(t.Field(i)))
	}
	return cols
}

// WriteRecordsCSV writes records as CSV with a header of RecordColumns.
func WriteRecordsCSV(w io.Writer, recs []eval.Record) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(RecordColumns()); err != nil {
		return err
	}
	row := make([]string, reflect.TypeFor[eval.Record]().NumField())
	for _, r := range recs {
		v := reflect.ValueOf(r)
		for i := range row {
			row[i] = cell(v.Field(i))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" || name == "-" {
		return f.Name
	}
	return name
}

func cell(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	default:
		b, err := json.Marshal(v.Interface())
		if err != nil {
			return fmt.Sprint(v.Interface())
		}
		return string(b)
	}
}
