// Preloaded into the test Socket.IO server (NODE_OPTIONS=--require): it checks each browser session by
// calling the site at the browser's Origin (http://SITE:PORT), so SITE must resolve even when /etc/hosts
// does not list it. EMAIL_SYNC_RESOLVE=SITE maps that one name to 127.0.0.1; every other name is untouched.
const dns = require("dns");

const name = process.env.EMAIL_SYNC_RESOLVE;
const lookup = dns.lookup;

dns.lookup = function (hostname, options, callback) {
	if (!name || hostname !== name) return lookup.apply(this, arguments);
	if (typeof options === "function") {
		callback = options;
		options = {};
	}
	if (typeof options === "number") options = { family: options };
	if (options && options.all) {
		process.nextTick(callback, null, [{ address: "127.0.0.1", family: 4 }]);
	} else {
		process.nextTick(callback, null, "127.0.0.1", 4);
	}
	return {};
};
