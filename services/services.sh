#!/usr/bin/env bash
# Installs (if missing) and starts, or stops, the services salespipe's
# integration tests and shipped pipelines talk to, all on 127.0.0.1:
#   MariaDB 3306, PostgreSQL 5432, Kafka (KRaft, one node) 9092,
#   S3 (s3proxy) 9000, HDFS (MiniDFSCluster: NameNode 8020, WebHDFS 9870).
# Idempotent: `up` twice leaves one of each running.
# Usage: services/services.sh up|down|status
#        services/services.sh cluster up|down|kill N|start N   (a 3-node Kafka cluster on 19092/19192/19292,
#                                                               started by the replication test itself)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=${SALESPIPE_SERVICES_DIR:-$HOME/.cache/salespipe/services}
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
kafka_home="$state/kafka-$kafka_version"
kafka_data="$state/kafka-data"
db_user=salespipe
db_pass=salespipe
db_name=salespipe

log() { printf 'services: %s\n' "$*"; }

# True if the pid file names a live Kafka broker (a stale pid may belong to another process by now).
kafka_alive() {
  [ -f "$state/kafka.pid" ] || return 1
  local pid; pid=$(cat "$state/kafka.pid")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}
sudo_maybe() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

wait_port() { # host port seconds name [pid: give up at once if it exits]
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    if [ -n "${5:-}" ] && ! kill -0 "$5" 2>/dev/null; then log "$4 exited before opening $1:$2"; return 1; fi
    sleep 0.2
  done
  log "$4 did not open $1:$2 within $3 s"; return 1
}

install_packages() {
  local missing=()
  [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
  command -v kcat >/dev/null || missing+=(kcat)
  [ -x /usr/bin/chromium ] || missing+=(chromium)      # the dashboard tests drive it (playwright-core)
  command -v dot >/dev/null || missing+=(graphviz)   # checks `explain --format dot` in the tests
  command -v openssl >/dev/null || missing+=(openssl) # the test CA and broker certificate
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (Debian packages)"
    sudo_maybe apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_maybe apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The tests' independent readers: kcat (Kafka, a Debian package above) and pyarrow (Parquet).
install_oracles() {
  if ! python3 -c 'import pyarrow' 2>/dev/null; then
    command -v python3 >/dev/null || { sudo_maybe apt-get update -qq; DEBIAN_FRONTEND=noninteractive sudo_maybe apt-get install -y -qq python3 >/dev/null; }
    python3 -m pip --version >/dev/null 2>&1 || { sudo_maybe apt-get update -qq; DEBIAN_FRONTEND=noninteractive sudo_maybe apt-get install -y -qq python3-pip >/dev/null; }
    log "installing pyarrow (PyPI), the independent Parquet reader of the tests"
    python3 -m pip install --quiet --disable-pip-version-check pyarrow 2>/dev/null ||
      python3 -m pip install --quiet --disable-pip-version-check --break-system-packages pyarrow
  fi
  # fsspec: pyarrow reads HDFS through its WebHDFS filesystem (pyarrow's own needs libhdfs).
  if ! python3 -c 'import fsspec' 2>/dev/null; then
    log "installing fsspec (PyPI), pyarrow's WebHDFS client in the tests"
    python3 -m pip install --quiet --disable-pip-version-check fsspec 2>/dev/null ||
      python3 -m pip install --quiet --disable-pip-version-check --break-system-packages fsspec
  fi
}

storage_home="$state/storage"
install_storage() { # s3|hdfs
  if [ ! -f "$storage_home/$1/.complete" ]; then
    log "fetching the $1 server from Maven Central (cached in ~/.m2)"
    mkdir -p "$storage_home/$1"
    mvn -q -B -f "$here/pom-storage.xml" -P "$1" dependency:copy-dependencies -DoutputDirectory="$storage_home/$1"
    touch "$storage_home/$1/.complete"
  fi
}

pid_alive() { # pidfile pattern
  [ -f "$1" ] || return 1
  local pid; pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "$2"
}

stop_pid() { # pidfile pattern name
  if pid_alive "$1" "$2"; then
    local pid; pid=$(cat "$1"); kill "$pid"
    local i; for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    log "$3 stopped"
  fi
  rm -f "$1"
}

# s3proxy: a real S3 server (SigV4, multipart uploads, conditional writes) storing objects under $state/s3-data.
s3_up() {
  if pid_alive "$state/s3.pid" s3proxy; then log "S3 already running"; return 0; fi
  install_storage s3
  mkdir -p "$state/s3-data"
  # Buckets the tests made in earlier runs (each test makes its own): gone after two hours.
  find "$state/s3-data" -mindepth 1 -maxdepth 1 -type d -mmin +120 -exec rm -rf {} + 2>/dev/null || true
  cat > "$state/s3.properties" <<PROPS
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=salespipe
s3proxy.credential=salespipe-secret
s3proxy.endpoint=http://127.0.0.1:9000
jclouds.provider=filesystem-nio2
jclouds.filesystem.basedir=$state/s3-data
PROPS
  setsid nohup java -Xmx384m -jar "$storage_home"/s3/s3proxy-*-jar-with-dependencies.jar --properties "$state/s3.properties" \
    > "$state/s3.log" 2>&1 &
  local pid=$!
  echo $pid > "$state/s3.pid"
  wait_port 127.0.0.1 9000 60 S3 $pid || { tail -30 "$state/s3.log"; return 1; }
  log "S3 (s3proxy) up on http://127.0.0.1:9000 (access key salespipe, secret salespipe-secret; log: $state/s3.log)"
}
s3_down() { stop_pid "$state/s3.pid" s3proxy S3; }

# HDFS: Hadoop's MiniDFSCluster (one NameNode, one DataNode), formatted afresh at each start.
hdfs_up() {
  if pid_alive "$state/hdfs.pid" MiniDFSClusterManager; then log "HDFS already running"; return 0; fi
  install_storage hdfs
  rm -rf "$state/hdfs-data" "$state/hdfs-ready.json"
  setsid nohup java -Xmx768m -cp "$storage_home/hdfs/*" -Dtest.build.data="$state/hdfs-data" \
    org.apache.hadoop.test.MiniDFSClusterManager -format -nnport 8020 -httpport 9870 \
    -writeDetails "$state/hdfs-ready.json" -D dfs.permissions.enabled=false > "$state/hdfs.log" 2>&1 &
  local pid=$!
  echo $pid > "$state/hdfs.pid"
  local i
  for ((i = 0; i < 600; i++)); do
    [ -s "$state/hdfs-ready.json" ] && break
    kill -0 "$pid" 2>/dev/null || { log "HDFS exited while starting"; tail -30 "$state/hdfs.log"; return 1; }
    sleep 0.2
  done
  [ -s "$state/hdfs-ready.json" ] || { log "HDFS did not start within 120 s"; tail -30 "$state/hdfs.log"; return 1; }
  wait_port 127.0.0.1 9870 30 "HDFS WebHDFS" $pid
  log "HDFS up: NameNode 127.0.0.1:8020, WebHDFS http://127.0.0.1:9870 (log: $state/hdfs.log)"
}
hdfs_down() { stop_pid "$state/hdfs.pid" MiniDFSClusterManager HDFS; }

install_kafka() {
  if [ ! -f "$kafka_home/.complete" ]; then
    log "fetching Kafka $kafka_version from Maven Central (cached in ~/.m2)"
    mkdir -p "$kafka_home/libs"
    mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$kafka_home/libs"
    touch "$kafka_home/.complete"
  fi
}

mariadb_up() {
  if mariadb-admin --protocol=socket ping >/dev/null 2>&1; then log "MariaDB already running"; else
    sudo_maybe install -d -o mysql -g mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then sudo_maybe mariadb-install-db --user=mysql >/dev/null; fi
    sudo_maybe start-stop-daemon --start --oknodo --background --chuid mysql \
      --exec /usr/sbin/mariadbd -- --bind-address=127.0.0.1 --port=3306 \
      --max-connections=500 --innodb-flush-log-at-trx-commit=2
    wait_port 127.0.0.1 3306 60 MariaDB
  fi
  local i; for ((i = 0; i < 50; i++)); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.2; done
  sudo_maybe mariadb -e "CREATE DATABASE IF NOT EXISTS $db_name;
    CREATE USER IF NOT EXISTS '$db_user'@'127.0.0.1' IDENTIFIED BY '$db_pass';
    CREATE USER IF NOT EXISTS '$db_user'@'localhost' IDENTIFIED BY '$db_pass';
    GRANT ALL ON *.* TO '$db_user'@'127.0.0.1'; GRANT ALL ON *.* TO '$db_user'@'localhost';"
  log "MariaDB up on 127.0.0.1:3306 (user $db_user, database $db_name)"
}

postgres_up() {
  local ver; ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | grep -q "^$ver *main"; then sudo_maybe pg_createcluster "$ver" main >/dev/null; fi
  if pg_lsclusters -h | grep -q "^$ver *main .*online"; then log "PostgreSQL already running"; else
    sudo_maybe pg_ctlcluster --skip-systemctl-redirect "$ver" main start -- -o "-c max_connections=300 -c synchronous_commit=off"
  fi
  wait_port 127.0.0.1 5432 60 PostgreSQL
  sudo_maybe su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='$db_user'\" | grep -q 1 ||
    psql -qc \"CREATE ROLE $db_user LOGIN SUPERUSER PASSWORD '$db_pass'\"" >/dev/null
  sudo_maybe su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='$db_name'\" | grep -q 1 ||
    createdb -O $db_user $db_name" >/dev/null
  log "PostgreSQL $ver up on 127.0.0.1:5432 (user $db_user, database $db_name)"
}

# A test CA and a broker certificate for 127.0.0.1, for the SASL_SSL listener.
kafka_tls() {
  local tls="$state/tls"
  [ -f "$tls/broker.p12" ] && return 0
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=salespipe test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$tls/san.ext"
  openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 3650 \
    -extfile "$tls/san.ext" -out "$tls/broker.pem" 2>/dev/null
  openssl pkcs12 -export -in "$tls/broker.pem" -inkey "$tls/broker.key" -certfile "$tls/ca.pem" \
    -passout pass:salespipe -out "$tls/broker.p12"
}

# SCRAM credentials of the test user (idempotent): salespipe / salespipe-secret.
kafka_scram() {
  local m
  for m in SCRAM-SHA-256 SCRAM-SHA-512; do # one mechanism per request: the broker refuses two for one user
    java -cp "$kafka_home/libs/*" kafka.admin.ConfigCommand --bootstrap-server 127.0.0.1:9092 --alter \
      --add-config "$m=[iterations=8192,password=salespipe-secret]" --entity-type users --entity-name salespipe \
      >/dev/null 2>"$state/kafka-scram.log" || { cat "$state/kafka-scram.log"; return 1; }
  done
}

kafka_up() {
  if kafka_alive; then log "Kafka already running"; return 0; fi
  mkdir -p "$state"
  kafka_tls
  cat > "$state/kafka.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,SASL_SSL://127.0.0.1:9094
advertised.listeners=PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9094
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_salespipe="salespipe-secret";
ssl.keystore.type=PKCS12
ssl.keystore.location=$state/tls/broker.p12
ssl.keystore.password=salespipe
ssl.key.password=salespipe
log.dirs=$kafka_data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=24
PROPS
  local cp="$kafka_home/libs/*"
  if [ ! -f "$kafka_data/meta.properties" ]; then
    local id; id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    java -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$state/kafka.properties" >/dev/null
  fi
  # setsid: the broker outlives the shell that started it.
  setsid nohup java -Xms256m -Xmx768m -Dlog4j2.level=WARN -cp "$cp" kafka.Kafka "$state/kafka.properties" \
    > "$state/kafka.log" 2>&1 &
  local pid=$!
  echo $pid > "$state/kafka.pid"
  # A broker recovering many partitions after an unclean stop (the machine
  # stopped with it running) takes minutes before it listens; it is waited
  # for as long as it is alive, up to 5 minutes. npm test deletes the
  # topics earlier runs left (test/support/prune-topics.ts), which keeps
  # that recovery short.
  wait_port 127.0.0.1 9092 300 Kafka $pid || { tail -30 "$state/kafka.log"; return 1; }
  wait_port 127.0.0.1 9094 30 "Kafka SASL_SSL" || { tail -30 "$state/kafka.log"; return 1; }
  kafka_scram
  log "Kafka $kafka_version up on 127.0.0.1:9092, SASL_SSL (SCRAM-SHA-256/512, PLAIN; CA $state/tls/ca.pem) on 127.0.0.1:9094 (log: $state/kafka.log)"
}

kafka_down() {
  if kafka_alive; then
    local pid; pid=$(cat "$state/kafka.pid"); kill "$pid"
    local i; for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    log "Kafka stopped"
  fi
  rm -f "$state/kafka.pid"
}

# A three-node Kafka cluster (KRaft, each node broker and controller) for the
# replication tests: brokers 127.0.0.1:19092, :19192, :19292; every topic
# replicated 3 times, min.insync.replicas 2. Separate from the single broker.
cluster_ports() { echo $((18992 + 100 * $1)); } # node 1 -> 19092
cluster_alive() { # node
  local f="$state/cluster/$1/kafka.pid"
  [ -f "$f" ] || return 1
  local pid; pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}

cluster_node_up() { # node
  local n=$1 port; port=$(cluster_ports "$1")
  if cluster_alive "$n"; then return 0; fi
  local dir="$state/cluster/$n"
  mkdir -p "$dir"
  cat > "$dir/kafka.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=1@127.0.0.1:19093,2@127.0.0.1:19193,3@127.0.0.1:19293
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=24
PROPS
  local cp="$kafka_home/libs/*"
  if [ ! -f "$dir/data/meta.properties" ]; then
    java -cp "$cp" kafka.tools.StorageTool format -t "$(cat "$state/cluster/cluster-id")" -c "$dir/kafka.properties" >/dev/null
  fi
  setsid nohup java -Xms128m -Xmx512m -Dlog4j2.level=WARN -cp "$cp" kafka.Kafka "$dir/kafka.properties" > "$dir/kafka.log" 2>&1 &
  echo $! > "$dir/kafka.pid"
}

cluster_node_down() { # node [signal]
  local f="$state/cluster/$1/kafka.pid"
  if cluster_alive "$1"; then
    local pid; pid=$(cat "$f"); kill "-${2:-TERM}" "$pid"
    local i; for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cluster_up() {
  mkdir -p "$state/cluster"
  [ -f "$state/cluster/cluster-id" ] || java -cp "$kafka_home/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1 > "$state/cluster/cluster-id"
  local n; for n in 1 2 3; do cluster_node_up "$n"; done
  for n in 1 2 3; do wait_port 127.0.0.1 "$(cluster_ports "$n")" 120 "Kafka cluster node $n" || { tail -30 "$state/cluster/$n/kafka.log"; return 1; }; done
  log "Kafka cluster up on 127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292 (replication 3, min.insync.replicas 2)"
}

mariadb_down() {
  if mariadb-admin ping >/dev/null 2>&1; then sudo_maybe mariadb-admin shutdown; log "MariaDB stopped"; fi
}

postgres_down() {
  for v in $(ls /usr/lib/postgresql 2>/dev/null); do
    sudo_maybe pg_ctlcluster --skip-systemctl-redirect "$v" main stop 2>/dev/null && log "PostgreSQL stopped" || true
  done
}

case "${1:-}" in
  up)
    install_packages; install_oracles; install_kafka
    mariadb_up; postgres_up; kafka_up; s3_up; hdfs_up
    ;;
  down)
    kafka_down; mariadb_down; postgres_down; s3_down; hdfs_down
    for n in 1 2 3; do cluster_node_down "$n"; done
    ;;
  stop|start) # one service, for the fault tests: stop|start mariadb|postgres|kafka|s3|hdfs
    case "${2:-}" in mariadb|postgres|kafka|s3|hdfs) ;; *) echo "usage: $0 $1 mariadb|postgres|kafka|s3|hdfs" >&2; exit 2 ;; esac
    if [ "$1" = stop ]; then "${2}_down"; else "${2}_up"; fi
    ;;
  cluster) # the three-node cluster: cluster up|down|reset | cluster kill|stop|start NODE
    install_kafka
    case "${2:-}" in
      up) cluster_up ;;
      down) for n in 1 2 3; do cluster_node_down "$n"; done; log "Kafka cluster stopped" ;;
      reset) for n in 1 2 3; do cluster_node_down "$n"; done; rm -rf "$state/cluster"; log "Kafka cluster data removed" ;;
      kill|stop|start)
        case "${3:-}" in 1|2|3) ;; *) echo "usage: $0 cluster $2 1|2|3" >&2; exit 2 ;; esac
        if [ "$2" = start ]; then cluster_node_up "$3"; wait_port 127.0.0.1 "$(cluster_ports "$3")" 120 "Kafka cluster node $3"
        elif [ "$2" = kill ]; then cluster_node_down "$3" KILL
        else cluster_node_down "$3"; fi
        log "Kafka cluster node $3: $2"
        ;;
      *) echo "usage: $0 cluster up|down|reset|kill N|stop N|start N" >&2; exit 2 ;;
    esac
    ;;
  reset-kafka) # wipe the broker's data (tests use fresh topic names instead)
    kafka_down; rm -rf "$kafka_data"; log "Kafka data removed"
    ;;
  status)
    mariadb-admin ping 2>/dev/null || echo "MariaDB down"
    pg_lsclusters 2>/dev/null || true
    if kafka_alive; then echo "Kafka running"; else echo "Kafka down"; fi
    if pid_alive "$state/s3.pid" s3proxy; then echo "S3 running"; else echo "S3 down"; fi
    if pid_alive "$state/hdfs.pid" MiniDFSClusterManager; then echo "HDFS running"; else echo "HDFS down"; fi
    ;;
  *) echo "usage: $0 up|down|status|reset-kafka|stop SERVICE|start SERVICE|cluster ..." >&2; exit 2 ;;
esac
