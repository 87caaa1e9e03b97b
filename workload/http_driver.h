// The HTTP driver of data workloads: PUT `URL/<key>` with the body
// `<seq>:<unix ns>`, GET each sent key to read back, DELETE to clean up,
// through the probes' http client (probes/http_client.h). Keys are
// `faultline:<run>:<name>:<seq>`. docs/experiments.md, "Data and RPO".
#ifndef FAULTLINE_WORKLOAD_HTTP_DRIVER_H_
#define FAULTLINE_WORKLOAD_HTTP_DRIVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "faultline/v1/data.pb.h"
#include "probes/http_client.h"
#include "workload/data_driver.h"

namespace faultline::workload {

// The base URL of a workload's keys: http:// only (as the http probe), no
// query or fragment (the key is appended to the path). Errors name `field`
// ("data[0].http.url").
absl::StatusOr<probes::HttpUrl> ParseDataUrl(const std::string& field, const std::string& url);

// Errors name `field` ("data[0].http").
absl::StatusOr<std::unique_ptr<DataDriver>> MakeHttpDriver(const std::string& field,
                                                           const v1::HttpData& spec,
                                                           const std::string& run_id,
                                                           const std::string& name);

}  // namespace faultline::workload

#endif  // FAULTLINE_WORKLOAD_HTTP_DRIVER_H_
