// The extension's settings (GUCs), defined in _PG_init.
#pragma once

namespace so::pg {

// stored_object.connect_timeout and stored_object.request_timeout, in
// milliseconds: defaults for S3 backends whose options set none.
extern int connect_timeout_ms;
extern int request_timeout_ms;

void settings_init();

}  // namespace so::pg
