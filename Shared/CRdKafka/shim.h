// Debian's librdkafka-dev installs its headers under <librdkafka/…>; `pkg-config --cflags rdkafka`
// is empty, so the include path is spelled out here.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
