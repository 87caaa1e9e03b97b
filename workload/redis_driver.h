// The Redis driver of data workloads: SET `<prefix><seq>` `<seq>:<unix ns>` on the
// primary (one server, or the one Sentinels name: probes::RedisPrimary),
// SCAN MATCH `<prefix>*` to read back, UNLINK to clean up.
#ifndef FAULTLINE_WORKLOAD_REDIS_DRIVER_H_
#define FAULTLINE_WORKLOAD_REDIS_DRIVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "faultline/v1/data.pb.h"
#include "workload/data_driver.h"

namespace faultline::workload {

// `prefix`: "faultline:<run>:<name>:". Errors name `field` ("data[0].redis").
absl::StatusOr<std::unique_ptr<DataDriver>> MakeRedisDriver(const std::string& field,
                                                            const v1::RedisData& spec,
                                                            const std::string& prefix);

}  // namespace faultline::workload

#endif  // FAULTLINE_WORKLOAD_REDIS_DRIVER_H_
