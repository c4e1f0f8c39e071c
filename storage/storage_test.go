package storage_test

import (
	"testing"

	"github.com/idsync/idsync/storage/storagetest"
)

func TestConformance(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			storagetest.Run(t, b.Open)
		})
	}
}
