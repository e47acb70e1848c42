package datasets

import (
	"context"
	"fmt"
)

// ReadItems streams the rows of files (format from each extension) through parse and returns the items in file
// order. A repeated item id is an error naming the file and row, and so is any parse error.
func ReadItems[T any](ctx context.Context, files []string, parse func(raw []byte) (T, error), id func(T) string) ([]T, error) {
	var items []T
	seen := map[string]bool{}
	for _, f := range files {
		err := ReadFile(f, "", func(_ int, raw []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			it, err := parse(raw)
			if err != nil {
				return err
			}
			if seen[id(it)] {
				return fmt.Errorf("duplicate item id %q", id(it))
			}
			seen[id(it)] = true
			items = append(items, it)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return items, nil
}
