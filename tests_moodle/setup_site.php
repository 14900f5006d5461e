<?php
// Seeds a freshly installed Moodle 4.5 test site for the lms_bridge harness, with Moodle's own API:
// people, a course with completion, enrolments, and a web-service user, service, role and token with
// the functions and capabilities the README lists. Prints one JSON object with the ids.
// Run as the web server user: runuser -u www-data -- php setup_site.php /path/to/moodle
define('CLI_SCRIPT', true);
require($argv[1] . '/config.php');
require_once($CFG->dirroot . '/user/lib.php');
require_once($CFG->dirroot . '/course/lib.php');
require_once($CFG->dirroot . '/lib/enrollib.php');
require_once($CFG->dirroot . '/webservice/lib.php');

$password = $argv[2];
\core\session\manager::set_user(get_admin());

function harness_user(string $username, string $first, string $last, string $password): int {
    global $DB, $CFG;
    if ($id = $DB->get_field('user', 'id', ['username' => $username])) {
        return (int)$id;
    }
    return (int)user_create_user((object)[
        'username' => $username, 'password' => $password, 'firstname' => $first, 'lastname' => $last,
        'email' => $username . '@example.org', 'auth' => 'manual', 'confirmed' => 1,
        'mnethostid' => $CFG->mnet_localhost_id, 'timezone' => '99', 'lang' => 'en',
    ], true, false);
}

$users = [
    'learner1' => harness_user('learner1', 'Siti', 'Rahma', $password),
    'learner2' => harness_user('learner2', 'Tomasi', 'Vea', $password),
    'facilitator1' => harness_user('facilitator1', 'Ana', 'Lim', $password),
    'expert1' => harness_user('expert1', 'Jae', 'Park', $password),
    'lmsbridge' => harness_user('lmsbridge', 'lms_bridge', 'Service', $password),
];
// Teachers keep Moodle's default zone ("99"); learner1 names hers, like a participant who set her profile.
$DB->set_field('user', 'timezone', 'Asia/Jakarta', ['id' => $users['learner1']]);

function harness_course(string $shortname, string $fullname): int {
    global $DB;
    if ($id = $DB->get_field('course', 'id', ['shortname' => $shortname])) {
        return (int)$id;
    }
    return (int)create_course((object)[
        'fullname' => $fullname, 'shortname' => $shortname, 'category' => 1, 'format' => 'topics',
        'numsections' => 3, 'enablecompletion' => 1, 'startdate' => time() - 86400,
    ])->id;
}
$course = harness_course('BLC', 'Blended Learning Course: Localizing Human Rights and SDGs');
$restorecourse = harness_course('BLC-R', 'Restore target');

$manual = enrol_get_plugin('manual');
$roles = $DB->get_records_menu('role', null, '', 'shortname, id');
foreach ([$course, $restorecourse] as $cid) {
    $instance = $DB->get_record('enrol', ['courseid' => $cid, 'enrol' => 'manual'], '*', MUST_EXIST);
    $manual->enrol_user($instance, $users['learner1'], $roles['student']);
    $manual->enrol_user($instance, $users['learner2'], $roles['student']);
    $manual->enrol_user($instance, $users['facilitator1'], $roles['editingteacher']);
    $manual->enrol_user($instance, $users['expert1'], $roles['teacher']);
}

// The web-service role, at system level, with the capabilities the README names plus the obvious ones.
$syscontext = context_system::instance();
if (!$roleid = $DB->get_field('role', 'id', ['shortname' => 'lmsbridgews'])) {
    $roleid = create_role('lms_bridge web service', 'lmsbridgews', 'Web-service user for lms_bridge');
    set_role_contextlevels($roleid, [CONTEXT_SYSTEM]);
}
$caps = ['webservice/rest:use', 'moodle/course:view', 'moodle/course:viewparticipants', 'moodle/course:viewhiddencourses',
    'moodle/grade:edit', 'moodle/grade:manage', 'moodle/grade:viewall', 'moodle/grade:viewhidden', 'gradereport/user:view',
    'moodle/calendar:manageentries', 'moodle/calendar:managegroupentries', 'moodle/site:sendmessage',
    'moodle/user:viewdetails', 'moodle/user:viewalldetails', 'moodle/course:overridecompletion', 'mod/lti:view',
    'report/progress:view', 'report/completion:view', 'moodle/course:managegroups', 'moodle/site:viewuseridentity',
    'moodle/site:readallmessages', 'moodle/site:accessallgroups', 'moodle/site:viewfullnames'];
foreach ($caps as $cap) {
    assign_capability($cap, CAP_ALLOW, $roleid, $syscontext->id, true);
}
role_assign($roleid, $users['lmsbridge'], $syscontext->id);

$functions = ['core_webservice_get_site_info', 'core_course_get_course_module_by_instance', 'core_grades_update_grades',
    'core_completion_override_activity_completion_status', 'core_calendar_create_calendar_events',
    'core_calendar_delete_calendar_events', 'core_calendar_get_calendar_events', 'core_message_send_instant_messages',
    'gradereport_user_get_grade_items'];
if (!$service = $DB->get_record('external_services', ['shortname' => 'lms_bridge'])) {
    $service = (object)['name' => 'lms_bridge', 'shortname' => 'lms_bridge', 'enabled' => 1, 'restrictedusers' => 1,
        'downloadfiles' => 0, 'uploadfiles' => 0, 'timecreated' => time(), 'timemodified' => time(), 'component' => null];
    $service->id = $DB->insert_record('external_services', $service);
}
foreach ($functions as $f) {
    if (!$DB->record_exists('external_services_functions', ['externalserviceid' => $service->id, 'functionname' => $f])) {
        $DB->insert_record('external_services_functions', (object)['externalserviceid' => $service->id, 'functionname' => $f]);
    }
}
if (!$DB->record_exists('external_services_users', ['externalserviceid' => $service->id, 'userid' => $users['lmsbridge']])) {
    $DB->insert_record('external_services_users', (object)['externalserviceid' => $service->id,
        'userid' => $users['lmsbridge'], 'timecreated' => time()]);
}
$token = $DB->get_field('external_tokens', 'token', ['externalserviceid' => $service->id, 'userid' => $users['lmsbridge']]);
if (!$token) {
    $token = \core_external\util::generate_token(EXTERNAL_TOKEN_PERMANENT, $service, $users['lmsbridge'], $syscontext);
}
// An admin token too, so the harness can read Moodle through its own web services.
$admintoken = $DB->get_field('external_tokens', 'token', ['externalserviceid' => $service->id, 'userid' => 2]);
if (!$admintoken) {
    $DB->insert_record('external_services_users', (object)['externalserviceid' => $service->id, 'userid' => 2,
        'timecreated' => time()]);
    $admintoken = \core_external\util::generate_token(EXTERNAL_TOKEN_PERMANENT, $service, 2, $syscontext);
}

// User tours put a backdrop over pages that swallows clicks in a headless browser.
$DB->set_field('tool_usertours_tours', 'enabled', 0);
purge_all_caches();

echo json_encode(['course' => $course, 'restorecourse' => $restorecourse, 'users' => $users, 'token' => $token,
    'admintoken' => $admintoken, 'service' => (int)$service->id]) . "\n";
